"""Placeholders: deep copy, inside strings, keys untouched, bounded depth, cycles."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from keyward import UnknownCredentialError
from keyward._resolve import resolve_placeholders

VALUES = {"a": "A", "b": "B"}


def lookup(name: str) -> str:
    if name not in VALUES:
        raise UnknownCredentialError(name)
    return VALUES[name]


def test_deep_copy_with_placeholders_replaced_everywhere_but_keys() -> None:
    shared = ["${credentials.b}"]
    obj = {
        "${credentials.a}": "x${credentials.a}y${credentials.b}",
        "l": [1, ("${credentials.a}",)],
        "s": shared,
        "t": shared,
        "o": OrderedDict(k="${credentials.a}"),
        "n": None,
        "bytes": b"${credentials.a}",
    }
    out = resolve_placeholders(obj, lookup)
    assert out["${credentials.a}"] == "xAyB"
    assert out["l"] == [1, ("A",)]
    assert out["s"] == ["B"] and out["s"] is out["t"]  # sharing kept
    assert out["o"] is obj["o"]  # other types are kept as they are
    assert out["bytes"] == b"${credentials.a}"
    assert obj["l"] == [1, ("${credentials.a}",)]
    assert resolve_placeholders("${credentials.}", lookup) == "${credentials.}"  # no name: not a placeholder


def test_unknown_names_raise_so_nothing_half_resolved_is_returned() -> None:
    with pytest.raises(UnknownCredentialError):
        resolve_placeholders(["${credentials.a}", "${credentials.zzz}"], lookup)


def test_cycles_and_deep_nesting_are_type_errors_not_recursion_errors() -> None:
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(TypeError, match="cycle"):
        resolve_placeholders(cyclic, lookup)
    deep: object = "x"
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(TypeError, match="deeper"):
        resolve_placeholders(deep, lookup)
    ok: object = "${credentials.a}"
    for _ in range(99):
        ok = {"k": ok}
    resolve_placeholders(ok, lookup)
