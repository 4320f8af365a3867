"""The claim rules of a verified access token (RFC 9068; Node's ``checkClaims`` + ``validateClaims``)
and :class:`Claims`, the read-only result. Only ever given a payload whose signature held."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

from ._token_error import expired, invalid

MAX_ACT_DEPTH = 32
MAX_FREEZE_DEPTH = 64
_CONTAINERS = frozenset({dict, list})


class _FrozenDict(dict[str, Any]):
    """A dict nobody can change: a result may be served again from the cache to another request."""

    __slots__ = ()

    def _readonly(self, *_: object, **__: object) -> NoReturn:
        raise TypeError("verified claims are read-only; copy them with dict(claims)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _readonly

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


def _freeze(value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict):
        if depth >= MAX_FREEZE_DEPTH:
            invalid("the access token payload is nested too deeply")
        frozen = _FrozenDict()
        dict.update(frozen, _frozen_items(value, depth + 1))
        return frozen
    if isinstance(value, list):
        if depth >= MAX_FREEZE_DEPTH:
            invalid("the access token payload is nested too deeply")
        return tuple(_freeze(v, depth + 1) for v in value)
    return value


def _frozen_items(value: dict[str, Any], depth: int) -> dict[str, Any]:
    # Most claims are strings and numbers: only containers pay for a call.
    return {k: _freeze(v, depth) if type(v) in (dict, list) else v for k, v in value.items()}


class Claims(_FrozenDict):
    """The claims of a verified access token: a read-only ``dict`` of every claim as signed, plus
    typed views. JSON arrays inside come back as tuples.

    Example::

        claims = verifier.verify(token)
        if "read" in claims.scopes:
            print(claims.subject, claims.act_chain, claims["jti"])
    """

    __module__ = "keyward.verify"
    __slots__ = ("_act_chain", "audience", "client_id", "expires_at", "scopes", "subject")

    #: ``sub``: the principal the token speaks for, e.g. ``consumer:billing`` or ``user:42``.
    subject: str
    #: ``scope`` split on spaces; empty when the token has none.
    scopes: tuple[str, ...]
    #: ``aud`` as a tuple.
    audience: tuple[str, ...]
    #: ``client_id``: the id of the key the token was obtained with.
    client_id: str
    #: ``exp``, in seconds since the epoch.
    expires_at: float
    _act_chain: tuple[str, ...]

    def __init__(
        self, payload: dict[str, Any], audience: tuple[str, ...], act_chain: tuple[str, ...]
    ) -> None:
        if _CONTAINERS.isdisjoint(map(type, payload.values())):
            dict.update(self, payload)  # the usual payload: strings and numbers only
        else:
            dict.update(self, _frozen_items(payload, 0))
        scope = payload.get("scope")
        setattr_ = object.__setattr__
        setattr_(self, "subject", payload["sub"])
        setattr_(self, "scopes", tuple(filter(None, scope.split(" "))) if scope else ())
        setattr_(self, "audience", audience)
        setattr_(self, "client_id", payload["client_id"])
        setattr_(self, "expires_at", payload["exp"])
        setattr_(self, "_act_chain", act_chain)

    @property
    def act_chain(self) -> list[str]:
        """The delegation chain from nested ``act`` claims (RFC 8693 §4.1), outermost first: the
        agent that presented the token, then the one that delegated to it… Empty when direct."""
        return list(self._act_chain)

    def __repr__(self) -> str:
        return f"Claims(subject={self.subject!r}, audience={self.audience!r}, scopes={self.scopes!r})"


def is_number(value: object) -> bool:
    """An int (not a bool) or a finite float."""
    if type(value) is int:
        return True
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _act_chain(act: object) -> tuple[str, ...]:
    chain: list[str] = []
    node = act
    while node is not None:
        if not isinstance(node, dict):
            invalid("the act claim is malformed")
        sub = node.get("sub")
        if not isinstance(sub, str) or not sub:
            invalid("the act claim is malformed")
        if len(chain) == MAX_ACT_DEPTH:
            invalid("the act claim is nested too deeply")
        chain.append(sub)
        node = node.get("act")
    return tuple(chain)


@dataclass(frozen=True, slots=True)
class Rules:
    """What a verifier requires of every token's claims."""

    issuer: str
    audiences: frozenset[str]
    leeway: float


def check_claims(payload: dict[str, Any], rules: Rules, now: float) -> Claims:
    """RFC 9068's required claims and their times; raises InvalidTokenError for the first broken one."""
    get = payload.get
    exp: Any = get("exp")
    iat: Any = get("iat")
    nbf: Any = get("nbf")
    if not is_number(exp):
        invalid("the access token has no valid exp claim")
    if not is_number(iat):
        invalid("the access token has no valid iat claim")
    if nbf is not None or "nbf" in payload:
        if not is_number(nbf):
            invalid("the access token has no valid nbf claim")
    if get("iss") != rules.issuer:
        invalid("the access token was issued by another issuer")
    aud = get("aud")
    if type(aud) is str:
        audience: tuple[str, ...] = (aud,)
    else:
        audience = tuple(aud) if isinstance(aud, list) else ()
        if not audience or not all(type(a) is str for a in audience):
            invalid("the access token has no valid aud claim")
    if rules.audiences.isdisjoint(audience):
        invalid("the access token is meant for another audience")
    leeway = rules.leeway
    if now >= exp + leeway:
        expired()
    if nbf is not None and now < nbf - leeway:
        invalid("the access token is not valid yet")
    if iat > now + leeway:
        invalid("the access token was issued in the future")
    sub, client_id, jti, scope = get("sub"), get("client_id"), get("jti"), get("scope")
    if type(sub) is not str or not sub:
        invalid("the access token has no valid sub claim")
    if type(client_id) is not str:
        invalid("the access token has no valid client_id claim")
    if type(jti) is not str:
        invalid("the access token has no valid jti claim")
    if scope is not None and type(scope) is not str:
        invalid("the access token has an invalid scope claim")
    act = get("act")
    return Claims(payload, audience, _act_chain(act) if act is not None else ())
