"""Verifying Keyward access tokens (RFC 9068 JWTs, ``typ: at+jwt``, ES256) in a Python service.

Mirrors the Node SDK's ``verifier`` (``packages/sdk/src/verify/``): the same checks, error codes and
bounds. What a token must be, in order:

- a string of at most 16 KiB, not a Keyward API key / refresh token / admin token, three canonical
  base64url segments;
- a protected header with ``alg`` among the pinned algorithms (``ES256``; ``EdDSA`` only when
  enabled: never ``none``, HMAC, RSA…), none of ``jku``/``x5u``/``jwk``/``x5c``/``crit``/``b64``
  (refused outright, never followed), ``typ`` ``at+jwt`` (case-insensitive, ``application/``
  optional, RFC 7515 §4.1.9) and a ``kid``, only ever a dict key into the issuer's JWKS;
- a signature that holds under that key (checked by ``cryptography`` for the key's own ``alg``);
- claims, read only once the signature holds: ``iss`` exactly, an ``aud`` among ours, ``exp`` and
  ``iat`` required, ``nbf``/``iat`` not in the future, with ``leeway`` seconds of tolerance; ``sub``,
  ``client_id``, ``jti`` strings; ``scope`` a string; ``act`` a well-formed chain.

A verified token is remembered (bounded LRU, by exact string — an ES256 high-S signature by its
low-S twin, as in Node) until it expires; every hit re-checks ``exp`` and that its key is still
published. Messages never contain the token or any part of it.

The steps live beside it: ``_compact.py`` (shape, header, signature), ``_claims.py`` (claim rules and
:class:`Claims`), ``_jwks.py`` (the key set), ``_result_cache.py`` (the LRU).
"""

from __future__ import annotations

import binascii
import re
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

import httpx

from . import _compact
from ._claims import Claims, Rules, check_claims, is_number
from ._jwks import JwksCache, JwksKey, JwksUnavailableError
from ._result_cache import MAX_CACHE_SIZE, ResultCache
from ._token_error import InvalidTokenError, TokenErrorCode, expired, invalid

__all__ = ["Claims", "InvalidTokenError", "JwksUnavailableError", "TokenErrorCode", "Verifier"]

MAX_TOKEN_CHARS = _compact.MAX_TOKEN_CHARS
_BEARER = re.compile(r"Bearer[ \t]+(\S+)[ \t]*", re.IGNORECASE)
#: Distinct protected headers remembered once accepted (Keyward's differ only by kid).
_MAX_ACCEPTED_HEADERS = 64


class _Cached(NamedTuple):
    claims: Claims
    kid: str
    key: JwksKey


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
            if not is_number(value) or value < 0 or (name == "timeout" and value == 0):
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
        self._rules = Rules(issuer, frozenset(audiences), float(leeway))
        self._results: ResultCache[_Cached] = ResultCache(cache_size)
        self._headers: ResultCache[tuple[str, str]] = ResultCache(_MAX_ACCEPTED_HEADERS)
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
            expired()
        if self._jwks.get(hit.kid) is hit.key:
            return hit.claims
        self._results.delete(cache_key)
        return None

    def _start(self, token: object) -> Claims | _compact.Parsed:
        if not isinstance(token, str) or not token:
            invalid("the access token is not a well-formed compact JWS")
        if len(token) > MAX_TOKEN_CHARS:
            invalid("the access token is too long")
        hit = self._cached(token)
        if hit is not None:
            return hit
        segments = _compact.split(token)
        header = self._headers.get(segments[0])
        if header is None:
            header = _compact.check_header(segments[0], self._algorithms)
            self._headers.set(segments[0], header)
        parsed = _compact.parse(token, header, segments)
        if parsed.cache_key is not token:
            twin = self._cached(parsed.cache_key)
            if twin is not None:
                return twin
        return parsed

    def _finish(self, parsed: _compact.Parsed, key: JwksKey | None) -> Claims:
        if key is None:
            invalid("the access token is signed by a key the issuer does not publish")
        if key.alg != parsed.alg:
            invalid("the access token's algorithm does not match its key")
        if not _compact.signature_holds(parsed, key):
            invalid("the access token signature is not valid")
        # Decoded only once the signature holds: unauthenticated JSON never reaches the claim checks.
        # (Leniently: the signature covers the segment as sent, so its encoding is the issuer's.)
        try:
            payload = _compact.json_object(_compact.b64url_lenient(parsed.payload_segment))
        except (binascii.Error, ValueError):
            payload = None
        if payload is None:
            invalid("the access token payload is not a JSON object")
        claims = check_claims(payload, self._rules, self._clock())
        self._results.set(parsed.cache_key, _Cached(claims, parsed.kid, key))
        return claims


def _bearer(authorization: str | None) -> str:
    if not isinstance(authorization, str) or not authorization.strip():
        raise InvalidTokenError("missing_credentials", "send Authorization: Bearer <access token>")
    match = _BEARER.fullmatch(authorization)
    if match is None:
        invalid("the Authorization header must be Bearer <access token>")
    return match.group(1)
