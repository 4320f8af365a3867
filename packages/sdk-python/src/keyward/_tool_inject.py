"""Where a wrapped tool receives its user's credentials (SPEC §7): as a ``credentials`` argument,
in an ``env`` mapping for child processes, or in ``headers``. Options are checked once, when the
tool is wrapped, so a typo fails at start-up with the option's name rather than on a user's call.
The same rules as the Node SDK's ``tools/injection.ts``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

InjectMode = Literal["params", "env", "headers"]

#: Arguments the model may plant to steer whose credentials a tool uses: never passed on.
PLANTED = ("credentials", "user", "user_id")
#: The keyword each mode hands the tool its values under.
KWARG: dict[str, str] = {"params": "credentials", "env": "env", "headers": "headers"}
#: What a child needs to run at all, and nothing that could be a secret: the agent's own environment
#: may hold its Keyward key or model keys, which a tool's child has no use for.
MINIMAL_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT", "TEMP", "TMP")

_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token characters
_REF = re.compile(r"\{([^{}]+)\}")


def default_env_var(name: str) -> str:
    """``aliyun-ak.v2`` → ``ALIYUN_AK_V2``.

    Example::

        assert default_env_var("aliyun-ak.v2") == "ALIYUN_AK_V2"
    """
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def _fail(msg: str) -> TypeError:
    return TypeError(f"with_user_credentials: {msg}")


@dataclass(frozen=True)
class Plan:
    mode: InjectMode
    names: tuple[str, ...]
    #: env: (variable, credential name)
    env: tuple[tuple[str, str], ...] = ()
    base_env: Mapping[str, str] | None = None
    #: headers: (header, template parts: a str is literal, a 1-tuple names a credential)
    headers: tuple[tuple[str, tuple[str | tuple[str], ...]], ...] = field(default=())

    @property
    def kwarg(self) -> str:
        return KWARG[self.mode]


def _known(names: Sequence[str], where: str, n: str) -> None:
    if n not in names:
        raise _fail(f'{where} refers to "{n}", which is not in names')


def plan_injection(
    names: Sequence[str],
    inject: str,
    env: Mapping[str, str] | None = None,
    base_env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Plan:
    if isinstance(names, str) or not names or not all(isinstance(n, str) and n for n in names):
        raise _fail("names must be a non-empty list of credential names")
    names = tuple(names)
    if len(set(names)) != len(names):
        raise _fail("names lists a credential twice")
    if inject not in KWARG:
        raise _fail('inject must be "params", "env" or "headers"')
    if env is not None and inject != "env":
        raise _fail('the env option needs inject="env"')
    if base_env is not None and inject != "env":
        raise _fail('the base_env option needs inject="env"')
    if headers is not None and inject != "headers":
        raise _fail('the headers option needs inject="headers"')

    def known(n: str, where: str) -> None:
        _known(names, where, n)

    env_plan: list[tuple[str, str]] = []
    if inject == "env":
        mapped = set()
        for var, n in (env or {}).items():
            if not _ENV_VAR.fullmatch(var):
                raise _fail(f'"{var}" is not an environment variable name')
            known(n, f"env[{var!r}]")
            env_plan.append((var, n))
            mapped.add(n)
        # A name the mapping does not mention still reaches the tool, under its default variable.
        env_plan += [(default_env_var(n), n) for n in names if n not in mapped]
        if len({v for v, _ in env_plan}) != len(env_plan):
            raise _fail("two credentials map to the same environment variable")

    header_plan: list[tuple[str, tuple[str | tuple[str], ...]]] = []
    if inject == "headers":
        if headers is None:
            if len(names) != 1:
                raise _fail("with several names, the headers option must say where each one goes")
            headers = {"Authorization": f"Bearer {{{names[0]}}}"}
        for h, template in headers.items():
            if not _HEADER.fullmatch(h):
                raise _fail(f'"{h}" is not a header name')
            if not isinstance(template, str):
                raise _fail(f"headers[{h!r}] must be a template string")
            header_plan.append(
                (h, _parse_template(template, functools.partial(_known, names, f"headers[{h!r}]")))
            )
    return Plan(inject, names, tuple(env_plan), base_env, tuple(header_plan))  # type: ignore[arg-type]


def _parse_template(template: str, check: Callable[[str], None]) -> tuple[str | tuple[str], ...]:
    parts: list[str | tuple[str]] = []
    at = 0
    for m in _REF.finditer(template):
        if m.start() > at:
            parts.append(template[at : m.start()])
        check(m.group(1))
        parts.append((m.group(1),))
        at = m.end()
    if at < len(template):
        parts.append(template[at:])
    return tuple(parts)


def injected(plan: Plan, values: Mapping[str, str]) -> dict[str, str]:
    """What the tool receives under ``plan.kwarg`` for one call. Nothing global is ever written:
    ``os.environ`` is read for the minimal variables only (or not at all with ``base_env``)."""
    if plan.mode == "params":
        return dict(values)
    if plan.mode == "env":
        base = plan.base_env if plan.base_env is not None else {k: os.environ.get(k) for k in MINIMAL_ENV}
        out = {k: v for k, v in base.items() if v is not None}
        out.update({var: values[n] for var, n in plan.env})
        return out
    headers: dict[str, str] = {}
    for h, parts in plan.headers:
        line = []
        for p in parts:
            if isinstance(p, str):
                line.append(p)
                continue
            value = values[p[0]]
            if any(c in value for c in "\r\n\0"):
                raise _fail(f'credential "{p[0]}" holds a line break and cannot go in a header')
            line.append(value)
        headers[h] = "".join(line)
    return headers


def model_kwargs(plan: Plan, kwargs: Mapping[str, object]) -> dict[str, object]:
    """The model's keyword arguments without planted fields (``credentials``, ``user``,
    ``user_id`` and the mode's own keyword), so it can neither replace a value nor name a user."""
    drop = {*PLANTED, plan.kwarg}
    return {k: v for k, v in kwargs.items() if k not in drop}
