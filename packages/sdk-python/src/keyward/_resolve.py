"""``${credentials.<name>}`` placeholders (the Node SDK's ``resolve.ts``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: ``${credentials.<name>}``; the name runs to the closing brace.
PLACEHOLDER = re.compile(r"\$\{credentials\.([^}]+)\}")
MARK = "${credentials."
#: Deepest nesting of dicts, lists and tuples walked: far deeper than any configuration, and well
#: within Python's recursion limit wherever ``resolve`` is called from.
MAX_DEPTH = 100


def resolve_placeholders(obj: T, lookup: Callable[[str], str]) -> T:
    """A deep copy of ``obj`` with every placeholder in every string replaced by ``lookup(name)``
    (which raises for a name it cannot answer, so nothing half-resolved is returned).

    ``dict``, ``list`` and ``tuple`` (exactly those types) are copied; dict keys are never
    substituted; any other object (bytes, dataclasses, subclasses such as ``OrderedDict`` or named
    tuples) is kept as the same reference, as the Node SDK keeps non-plain objects. A container
    reached twice is copied once (sharing is kept). A cycle, or nesting deeper than ``MAX_DEPTH``,
    raises TypeError.

    Example::

        resolve_placeholders({"url": "postgres://app:${credentials.db}@db/app"}, {"db": "pw"}.__getitem__)
        # {'url': 'postgres://app:pw@db/app'}
    """
    done: dict[int, Any] = {}
    path: set[int] = set()

    def replace(m: re.Match[str]) -> str:
        return lookup(m.group(1))

    def walk(value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            return PLACEHOLDER.sub(replace, value) if MARK in value else value
        if kind is not dict and kind is not list and kind is not tuple:
            return value
        key = id(value)
        if key in done:
            return done[key]
        if key in path:
            raise TypeError("resolve: the object contains a cycle")
        if depth >= MAX_DEPTH:
            raise TypeError(f"resolve: the object is nested deeper than {MAX_DEPTH} levels")
        path.add(key)
        out: Any
        if kind is dict:
            out = {k: walk(v, depth + 1) for k, v in value.items()}
        elif kind is list:
            out = [walk(v, depth + 1) for v in value]
        else:
            out = tuple(walk(v, depth + 1) for v in value)
        path.discard(key)
        done[key] = out
        return out

    result: T = walk(obj, 0)
    return result
