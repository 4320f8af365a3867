"""Verifying Keyward access tokens (RFC 9068 JWTs, ``typ: at+jwt``, ES256) in a Python service.

Mirrors the Node SDK's ``verifier`` (``packages/sdk/src/verify/``): the same checks, error codes and
bounds. What a token must be, in order:

- a string of at most 16 KiB, not a Keyward API key / refresh token / admin token, three canonical
  base64url segments;
- a protected header with ``alg`` among the pinned algorithms (``ES256``; ``EdDSA`` only when
  enabled: never ``none``, HMAC, RSA…), none of ``jku``/``x5u``/``jwk``/``x5c``/``crit``/``b64``
  (refused outright, never followed), ``typ`` ``at+jwt`` (case-insensitive, ``application/``
  optional, RFC 7515 §4.1.9) and a ``kid``, only ever a dict key into the issuer's JWKS;
- a signature that holds under that key (checked by PyJWT's algorithm for the key's own ``alg``);
- claims, read only once the signature holds: ``iss`` exactly, an ``aud`` among ours, ``exp`` and
  ``iat`` required, ``nbf``/``iat`` not in the future, with ``leeway`` seconds of tolerance; ``sub``,
  ``client_id``, ``jti`` strings; ``scope`` a string; ``act`` a well-formed chain.

A verified token is remembered (bounded LRU, by exact string — an ES256 high-S signature by its
low-S twin, as in Node) until it expires; every hit re-checks ``exp`` and that its key is still
published. Messages never contain the token or any part of it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import httpx
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from ._jwks import JwksCache, JwksKey, JwksUnavailableError, b64url_decode
from ._result_cache import MAX_CACHE_SIZE, ResultCache
from .errors import KeywardError

__all__ = ["Claims", "InvalidTokenError", "JwksUnavailableError", "TokenErrorCode", "Verifier"]

#: Bounds the work spent on garbage; far larger than any token Keyward issues.
MAX_TOKEN_CHARS = 16 * 1024
MAX_ACT_DEPTH = 32
MAX_FREEZE_DEPTH = 64
_FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit", "b64")
_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_OPAQUE_CREDENTIAL = re.compile(r"kw[kra]_")
_BEARER = re.compile(r"Bearer[ \t]+(\S+)[ \t]*", re.IGNORECASE)
_SIGNATURE_BYTES = {"ES256": 64, "EdDSA": 64}
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_MAX_ACCEPTED_HEADERS = 64

TokenErrorCode = Literal["invalid_token", "token_expired", "missing_credentials"]


class InvalidTokenError(KeywardError):
    """A token was refused. ``code`` is ``invalid_token`` or ``token_expired`` (``missing_credentials``
    only from :meth:`Verifier.verify_header` without a token) — the Node SDK's
    ``TokenVerificationError`` codes. The message says why in general terms, never quoting the token.

    Example::

        try:
            claims = verifier.verify(token)
        except InvalidTokenError as err:
            log.warning("refused: %s (%s)", err.code, err)
    """

    code: TokenErrorCode

    def __init__(self, code: TokenErrorCode, message: str) -> None:
        super().__init__(code, message)


def _invalid(message: str) -> NoReturn:
    raise InvalidTokenError("invalid_token", message) from None


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
            _invalid("the access token payload is nested too deeply")
        frozen = _FrozenDict()
        dict.update(frozen, _frozen_items(value, depth + 1))
        return frozen
    if isinstance(value, list):
        if depth >= MAX_FREEZE_DEPTH:
            _invalid("the access token payload is nested too deeply")
        return tuple(_freeze(v, depth + 1) for v in value)
    return value


def _frozen_items(value: dict[str, Any], depth: int) -> dict[str, Any]:
    # Most claims are strings and numbers: only containers pay for a call.
    return {k: _freeze(v, depth) if isinstance(v, (dict, list)) else v for k, v in value.items()}


class Claims(_FrozenDict):
    """The claims of a verified access token: a read-only ``dict`` of every claim as signed, plus
    typed views. JSON arrays inside come back as tuples.

    Example::

        claims = verifier.verify(token)
        if "read" in claims.scopes:
            print(claims.subject, claims.act_chain, claims["jti"])
    """

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
        dict.update(self, _frozen_items(payload, 0))
        scope = payload.get("scope")
        object.__setattr__(self, "subject", payload["sub"])
        object.__setattr__(self, "scopes", tuple(s for s in scope.split(" ") if s) if scope else ())
        object.__setattr__(self, "audience", audience)
        object.__setattr__(self, "client_id", payload["client_id"])
        object.__setattr__(self, "expires_at", payload["exp"])
        object.__setattr__(self, "_act_chain", act_chain)

    @property
    def act_chain(self) -> list[str]:
        """The delegation chain from nested ``act`` claims (RFC 8693 §4.1), outermost first: the
        agent that presented the token, then the one that delegated to it… Empty when direct."""
        return list(self._act_chain)

    def __repr__(self) -> str:
        return f"Claims(subject={self.subject!r}, audience={self.audience!r}, scopes={self.scopes!r})"


@dataclass(frozen=True, slots=True)
class _Parsed:
    alg: str
    kid: str
    signing_input: str
    payload_segment: str
    signature: bytes
    #: The result cache's key: the token, or its low-S twin for a high-S ES256 signature.
    cache_key: str


@dataclass(frozen=True, slots=True)
class _Cached:
    claims: Claims
    kid: str
    key: JwksKey


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: For a segment of length % 4 == 2 (or 3), the last character carries 4 (or 2) unused bits, which
#: must be zero in the canonical encoding: these are the characters where they are.
_CANONICAL_LAST = {2: frozenset(_B64URL[::16]), 3: frozenset(_B64URL[::4])}


def _decode_signature(segment: str) -> bytes | None:
    """Strict base64url of a signature (the alphabet was already checked): a trailing-bits variant
    would be a second string for one token."""
    rest = len(segment) % 4
    if rest == 1 or (rest and segment[-1] not in _CANONICAL_LAST[rest]):
        return None
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _typ_accepted(typ: object) -> bool:
    if not isinstance(typ, str):
        return False
    lower = typ.lower()
    return lower in ("at+jwt", "application/at+jwt")


def _check_header(segment: str, algorithms: frozenset[str]) -> tuple[str, str]:
    raw = b64url_decode(segment)
    header = _json_object(raw) if raw else None
    if header is None:
        _invalid("the access token is not a well-formed compact JWS")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        _invalid("the access token is signed with an algorithm this verifier does not accept")
    for name in _FORBIDDEN_HEADERS:
        if name in header:
            _invalid(f'the access token carries a forbidden "{name}" header')
    if not _typ_accepted(header.get("typ")):
        _invalid('the token is not an access token (typ must be "at+jwt")')
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        _invalid("the access token header has no kid")
    return alg, kid


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        # The parser's message quotes the input, and the input is part of a token: drop it.
        return None
    return value if isinstance(value, dict) else None


def _low_s_twin(signing_input: str, signature: bytes) -> str | None:
    """ES256 is malleable: (r, n - s) verifies like (r, s). The low-S form names both (Node's low-s.ts)."""
    s = int.from_bytes(signature[32:], "big")
    if s <= _P256_N >> 1 or s >= _P256_N:
        return None
    low = signature[:32] + (_P256_N - s).to_bytes(32, "big")
    return signing_input + "." + base64.urlsafe_b64encode(low).rstrip(b"=").decode("ascii")


def _is_number(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _act_chain(act: object) -> tuple[str, ...]:
    chain: list[str] = []
    node = act
    while node is not None:
        if not isinstance(node, dict):
            _invalid("the act claim is malformed")
        sub = node.get("sub")
        if not isinstance(sub, str) or not sub:
            _invalid("the act claim is malformed")
        if len(chain) == MAX_ACT_DEPTH:
            _invalid("the act claim is nested too deeply")
        chain.append(sub)
        node = node.get("act")
    return tuple(chain)


@dataclass(frozen=True, slots=True)
class _Rules:
    issuer: str
    audiences: frozenset[str]
    leeway: float


def _check_claims(payload: dict[str, Any], rules: _Rules, now: float) -> Claims:
    """RFC 9068's required claims and their times (Node's ``checkClaims`` + ``validateClaims``)."""
    for name in ("exp", "iat"):
        if not _is_number(payload.get(name)):
            _invalid(f"the access token has no valid {name} claim")
    if "nbf" in payload and not _is_number(payload["nbf"]):
        _invalid("the access token has no valid nbf claim")
    if payload.get("iss") != rules.issuer:
        _invalid("the access token was issued by another issuer")
    aud = payload.get("aud")
    audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else None
    if not audience or not all(isinstance(a, str) for a in audience):
        _invalid("the access token has no valid aud claim")
    if rules.audiences.isdisjoint(audience):
        _invalid("the access token is meant for another audience")
    if now >= payload["exp"] + rules.leeway:
        raise InvalidTokenError("token_expired", "the access token has expired")
    if "nbf" in payload and now < payload["nbf"] - rules.leeway:
        _invalid("the access token is not valid yet")
    if payload["iat"] > now + rules.leeway:
        _invalid("the access token was issued in the future")
    sub, client_id, jti, scope = (
        payload.get("sub"),
        payload.get("client_id"),
        payload.get("jti"),
        payload.get("scope"),
    )
    if not isinstance(sub, str) or not sub:
        _invalid("the access token has no valid sub claim")
    if not isinstance(client_id, str):
        _invalid("the access token has no valid client_id claim")
    if not isinstance(jti, str):
        _invalid("the access token has no valid jti claim")
    if scope is not None and not isinstance(scope, str):
        _invalid("the access token has an invalid scope claim")
    return Claims(payload, audience, _act_chain(payload.get("act")))


class Verifier:
    """Verifies Keyward access tokens for one service (``audience``: its name in Keyward's ``aud``).

    The issuer's JWKS (``<issuer>/.well-known/jwks.json`` unless ``jwks_url`` is given) is fetched on
    first use and kept in memory; a token signed by a key not in it causes at most one refetch per
    ``jwks_cooldown`` seconds, and the set is refreshed in the background once older than
    ``jwks_refresh_interval``. :meth:`verify` blocks on a JWKS fetch when one is needed;
    :meth:`averify` awaits it instead (everything else is shared). Thread-safe.

    Example::

        from keyward.verify import Verifier

        verifier = Verifier(issuer="https://keyward.internal", audience="research-agent")
        claims = verifier.verify(token)
        print(claims.subject, claims.scopes, claims.act_chain)
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Iterable[str],
        *,
        jwks_url: str | None = None,
        algorithms: Iterable[str] = ("ES256",),
        leeway: float = 5,
        cache_size: int = 10_000,
        jwks_cooldown: float = 30,
        jwks_refresh_interval: float = 600,
        timeout: float = 5,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise ValueError("Verifier: issuer must be a non-empty string")
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        if not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("Verifier: audience must be a non-empty string or list of strings")
        url = jwks_url if jwks_url is not None else issuer.rstrip("/") + "/.well-known/jwks.json"
        if not re.match(r"https?://[^/?#]", url, re.IGNORECASE):
            raise ValueError(
                "Verifier: jwks_url must be an http(s) URL"
                if jwks_url is not None
                else "Verifier: issuer must be an http(s) URL (or pass jwks_url)"
            )
        algs = frozenset(algorithms)
        if not algs or not algs <= {"ES256", "EdDSA"}:
            raise ValueError('Verifier: algorithms may only hold "ES256" and "EdDSA", at least one')
        for name, value in (
            ("leeway", leeway),
            ("jwks_cooldown", jwks_cooldown),
            ("jwks_refresh_interval", jwks_refresh_interval),
            ("timeout", timeout),
        ):
            if not _is_number(value) or value < 0 or (name == "timeout" and value == 0):
                raise ValueError(
                    f"Verifier: {name} must be a {'positive' if name == 'timeout' else 'non-negative'} number"
                )
        if (
            isinstance(cache_size, bool)
            or not isinstance(cache_size, int)
            or not 0 <= cache_size <= MAX_CACHE_SIZE
        ):
            raise ValueError(f"Verifier: cache_size must be an integer from 0 to {MAX_CACHE_SIZE}")
        if async_transport is None and isinstance(transport, httpx.AsyncBaseTransport):
            async_transport = transport  # httpx.MockTransport serves both
        self._clock = clock
        self._algorithms = algs
        self._rules = _Rules(issuer, frozenset(audiences), float(leeway))
        self._results: ResultCache[_Cached] = ResultCache(cache_size)
        self._headers: ResultCache[tuple[str, str]] = ResultCache(_MAX_ACCEPTED_HEADERS)
        self._signers = {"ES256": ECAlgorithm(ECAlgorithm.SHA256), "EdDSA": OKPAlgorithm()}
        self._jwks = JwksCache(
            url,
            algs,
            clock=clock,
            cooldown=float(jwks_cooldown),
            max_age=float(jwks_refresh_interval),
            timeout=float(timeout),
            transport=transport,
            async_transport=async_transport,
        )

    @property
    def issuer(self) -> str:
        return self._rules.issuer

    @property
    def jwks_url(self) -> str:
        return self._jwks.uri

    def verify(self, token: str) -> Claims:
        """Verifies a compact access token; raises :class:`InvalidTokenError` for a bad one and
        :class:`JwksUnavailableError` while the issuer's keys cannot be loaded.

        Example::

            claims = verifier.verify(request.headers["authorization"].removeprefix("Bearer "))
        """
        step = self._start(token)
        if isinstance(step, Claims):
            return step
        key = self._jwks.get(step.kid) or self._jwks.resolve_missing(step.kid)
        return self._finish(step, key)

    async def averify(self, token: str) -> Claims:
        """:meth:`verify` for asyncio: a JWKS fetch is awaited, never blocking the event loop.

        Example::

            claims = await verifier.averify(token)
        """
        step = self._start(token)
        if isinstance(step, Claims):
            return step
        key = self._jwks.get(step.kid) or await self._jwks.aresolve_missing(step.kid)
        return self._finish(step, key)

    def verify_header(self, authorization: str | None) -> Claims:
        """:meth:`verify` of an ``Authorization`` header value (``Bearer <token>``); a missing or
        blank header is ``missing_credentials``.

        Example::

            claims = verifier.verify_header(request.headers.get("authorization"))
        """
        return self.verify(_bearer(authorization))

    async def averify_header(self, authorization: str | None) -> Claims:
        """:meth:`verify_header` for asyncio.

        Example::

            claims = await verifier.averify_header(request.headers.get("authorization"))
        """
        return await self.averify(_bearer(authorization))

    def refresh(self) -> None:
        """Loads the JWKS now (e.g. at start-up, so the first request does not wait for it).

        Example::

            verifier.refresh()  # raises JwksUnavailableError if the issuer cannot be reached
        """
        self._jwks.refresh()

    async def arefresh(self) -> None:
        """:meth:`refresh` for asyncio.

        Example::

            await verifier.arefresh()
        """
        await self._jwks.arefresh()

    # -- the shared steps ------------------------------------------------------------------------

    def _cached(self, cache_key: str) -> Claims | None:
        hit = self._results.get(cache_key)
        if hit is None:
            return None
        if self._clock() >= hit.claims.expires_at + self._rules.leeway:
            self._results.delete(cache_key)
            raise InvalidTokenError("token_expired", "the access token has expired")
        if self._jwks.get(hit.kid) is hit.key:
            return hit.claims
        self._results.delete(cache_key)
        return None

    def _start(self, token: object) -> Claims | _Parsed:
        if not isinstance(token, str) or not token:
            _invalid("the access token is not a well-formed compact JWS")
        if len(token) > MAX_TOKEN_CHARS:
            _invalid("the access token is too long")
        hit = self._cached(token)
        if hit is not None:
            return hit
        parsed = self._parse(token)
        if parsed.cache_key is not token:
            twin = self._cached(parsed.cache_key)
            if twin is not None:
                return twin
        return parsed

    def _parse(self, token: str) -> _Parsed:
        if _OPAQUE_CREDENTIAL.match(token):
            _invalid("an API key, refresh token or admin token is not an access token")
        match = _COMPACT.fullmatch(token)
        if match is None:
            _invalid("the access token is not a well-formed compact JWS")
        header_segment, payload_segment, signature_segment = match.groups()
        header = self._headers.get(header_segment)
        if header is None:
            header = _check_header(header_segment, self._algorithms)
            self._headers.set(header_segment, header)
        alg, kid = header
        signature = _decode_signature(signature_segment)
        if signature is None or len(signature) != _SIGNATURE_BYTES[alg]:
            _invalid("the access token is not a well-formed compact JWS")
        signing_input = token[: len(header_segment) + 1 + len(payload_segment)]
        twin = _low_s_twin(signing_input, signature) if alg == "ES256" else None
        return _Parsed(alg, kid, signing_input, payload_segment, signature, twin or token)

    def _finish(self, parsed: _Parsed, key: JwksKey | None) -> Claims:
        if key is None:
            _invalid("the access token is signed by a key the issuer does not publish")
        if key.alg != parsed.alg:
            _invalid("the access token's algorithm does not match its key")
        if not self._signers[parsed.alg].verify(
            parsed.signing_input.encode("ascii"), key.public_key, parsed.signature
        ):
            _invalid("the access token signature is not valid")
        # Decoded only once the signature holds: unauthenticated JSON never reaches the claim checks.
        # (Leniently: the signature covers the segment as sent, so its encoding is the issuer's.)
        segment = parsed.payload_segment
        try:
            payload = _json_object(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (binascii.Error, ValueError):
            payload = None
        if payload is None:
            _invalid("the access token payload is not a JSON object")
        claims = _check_claims(payload, self._rules, self._clock())
        self._results.set(parsed.cache_key, _Cached(claims, parsed.kid, key))
        return claims


def _bearer(authorization: str | None) -> str:
    if not isinstance(authorization, str) or not authorization.strip():
        raise InvalidTokenError("missing_credentials", "send Authorization: Bearer <access token>")
    match = _BEARER.fullmatch(authorization)
    if match is None:
        _invalid("the Authorization header must be Bearer <access token>")
    return match.group(1)
