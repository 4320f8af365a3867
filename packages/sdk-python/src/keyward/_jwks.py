"""The issuer's key set (JWKS), fetched by us and held in memory (mirrors the Node SDK's
``verify/jwks.ts`` and ``keyward-jwk.ts``).

Invariants:

- A known kid costs a dict lookup. An unknown kid (after a key rotation) refetches the set, but at
  most once per ``cooldown`` however many tokens with made-up kids arrive, and concurrent misses —
  threads and asyncio tasks alike — wait for the same fetch (one ``concurrent.futures.Future``).
- ``kid`` is only a dict key: never a path, a URL or anything fetched. Once a set is loaded, only
  kids shaped like Keyward's (RFC 7638 thumbprints) may cause a refetch.
- The body is read within 1 MiB (decompressed size, bounded while decompressing), within
  ``timeout`` seconds in all, without following redirects; at most 100 keys are looked at.
- Only EC P-256 keys (and OKP Ed25519 ones when EdDSA is accepted) are kept, built from their public
  members only; an unchanged JWK keeps the very same key object across refreshes, so results cached
  under it stay valid.
- Before the first successful load the verifier cannot judge any token: that is
  :class:`JwksUnavailableError` (an outage, never a verdict on the token). After it, a failed
  refetch keeps the keys held.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import threading
import time
import zlib
from collections.abc import Callable, Collection
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import KeywardError, ResponseTooLargeError

#: Bounds what a misconfigured or hostile JWKS endpoint can make us buffer or parse.
MAX_JWKS_BYTES = 1024 * 1024
MAX_KEYS = 100
#: Before the first successful load there is nothing to serve, so failures are retried sooner.
FIRST_LOAD_RETRY_S = 1.0
#: Keyward's kids are RFC 7638 thumbprints (43 base64url characters); stricter than other IdPs'.
KEYWARD_KID = re.compile(r"[A-Za-z0-9._~+=-]{1,128}")
#: JWK members holding private or secret key material (RFC 7518 §6): never read, never fingerprinted.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey


class JwksUnavailableError(KeywardError):
    """The issuer's key set could not be loaded, so no token can be judged yet. An outage, not a
    verdict on the token: the middleware answers 503 ``jwks_unavailable``, never 401.

    Example::

        try:
            claims = verifier.verify(token)
        except JwksUnavailableError:
            return retry_later()
    """

    def __init__(self, message: str) -> None:
        super().__init__("jwks_unavailable", message)


@dataclass(frozen=True, slots=True, eq=False)
class JwksKey:
    """A public key of the issuer, bound to the one algorithm it may verify."""

    alg: str
    public_key: PublicKey


@dataclass(frozen=True, slots=True)
class _Entry:
    key: JwksKey
    #: The JWK's public members, canonical: an unchanged JWK keeps its key object across refreshes.
    fingerprint: str


class _FetchError(Exception):
    """Why a fetch failed, in words safe to show (no body, no credentials)."""


def b64url_decode(segment: str) -> bytes | None:
    """Strict base64url without padding (RFC 7515 §2): ``None`` for anything but the canonical form,
    so two different strings never decode to the same bytes.

    Example::

        assert b64url_decode("aGk") == b"hi"
        assert b64url_decode("aGl") is None  # non-zero trailing bits
    """
    if len(segment) % 4 == 1 or "=" in segment:
        return None
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") == segment else None


def import_jwk(jwk: dict[str, Any], algorithms: Collection[str]) -> JwksKey | None:
    """One JWK as a usable key, or ``None`` to skip it (a type or algorithm not accepted, a broken
    encoding, a point not on the curve). Only public members are read."""
    kty, crv, alg, x = jwk.get("kty"), jwk.get("crv"), jwk.get("alg"), jwk.get("x")
    if kty == "EC" and crv == "P-256":
        key_alg = "ES256"
    elif kty == "OKP" and crv == "Ed25519":
        key_alg = "EdDSA"
    else:
        return None
    if (alg is not None and alg != key_alg) or key_alg not in algorithms or not isinstance(x, str):
        return None
    x_bytes = b64url_decode(x)
    if x_bytes is None or len(x_bytes) != 32:
        return None
    try:
        if key_alg == "EdDSA":
            return JwksKey("EdDSA", Ed25519PublicKey.from_public_bytes(x_bytes))
        y = jwk.get("y")
        y_bytes = b64url_decode(y) if isinstance(y, str) else None
        if y_bytes is None or len(y_bytes) != 32:
            return None
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x_bytes, "big"), int.from_bytes(y_bytes, "big"), ec.SECP256R1()
        )
        return JwksKey("ES256", numbers.public_key())  # raises for a point not on the curve
    except ValueError:
        return None


def _fingerprint(jwk: dict[str, Any]) -> str:
    public = sorted((k, v) for k, v in jwk.items() if k not in PRIVATE_MEMBERS)
    return json.dumps(public, sort_keys=True, separators=(",", ":"), default=str)


def parse_key_set(
    body: bytes, algorithms: Collection[str], previous: dict[str, _Entry] | None
) -> dict[str, _Entry]:
    """The usable keys of a JWKS document, by kid (first of a duplicated kid wins)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise _FetchError("the JWKS response is not JSON") from None
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise _FetchError("the JWKS response has no keys array")
    out: dict[str, _Entry] = {}
    for jwk in keys[:MAX_KEYS]:
        if not isinstance(jwk, dict):
            continue
        kid, use = jwk.get("kid"), jwk.get("use")
        if not isinstance(kid, str) or not kid or kid in out or (use is not None and use != "sig"):
            continue
        fingerprint = _fingerprint(jwk)
        old = previous.get(kid) if previous else None
        if old is not None and old.fingerprint == fingerprint:
            out[kid] = old
            continue
        key = import_jwk(jwk, algorithms)
        if key is not None:
            out[kid] = _Entry(key, fingerprint)
    return out


class _BoundedBody:
    """Collects a body within MAX_JWKS_BYTES, decompressing gzip/zlib in bounded steps (a small
    compressed body must not expand past the limit in memory)."""

    def __init__(self, encoding: str) -> None:
        enc = encoding.strip().lower()
        if enc in ("", "identity"):
            self._z: Any = None
        elif enc in ("gzip", "x-gzip", "deflate"):
            self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)
        else:
            raise _FetchError("the JWKS response has an unsupported content-encoding")
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, raw: bytes) -> None:
        if self._z is None:
            self._add(raw)
            return
        data = raw
        while data:
            try:
                self._add(self._z.decompress(data, MAX_JWKS_BYTES + 1 - self._size))
            except zlib.error:
                raise _FetchError("the JWKS response is not validly compressed") from None
            data = self._z.unconsumed_tail

    def _add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > MAX_JWKS_BYTES:
            raise ResponseTooLargeError("the JWKS response", "jwks_bytes", MAX_JWKS_BYTES)
        self._parts.append(chunk)

    def value(self) -> bytes:
        return b"".join(self._parts)


def _start_body(res: httpx.Response) -> _BoundedBody:
    if not 200 <= res.status_code < 300:
        raise _FetchError(f"the JWKS endpoint answered HTTP {res.status_code}")
    declared = res.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
        raise ResponseTooLargeError("the JWKS response", "jwks_bytes", MAX_JWKS_BYTES)
    return _BoundedBody(res.headers.get("content-encoding", ""))


def _from_memory(res: httpx.Response) -> _BoundedBody:
    body = _BoundedBody("")  # already decoded by httpx
    body.feed(res.content)
    return body


def _describe(err: BaseException) -> str:
    if isinstance(err, (_FetchError, KeywardError)):
        return str(err)
    if isinstance(err, (httpx.TimeoutException, asyncio.TimeoutError, FutureTimeout)):
        return "timed out"
    return type(err).__name__


def _display(uri: str) -> str:
    """The URL without credentials or query, as it may appear in a message."""
    url = httpx.URL(uri)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


_HEADERS = {"accept": "application/json", "accept-encoding": "gzip, identity"}


class JwksCache:
    """The key set of one issuer. ``get`` is memory only; ``resolve_missing`` / ``aresolve_missing``
    load or refetch under the rules in the module docstring."""

    def __init__(
        self,
        uri: str,
        algorithms: Collection[str],
        *,
        clock: Callable[[], float],
        cooldown: float,
        max_age: float,
        timeout: float,
        transport: httpx.BaseTransport | None,
        async_transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.uri = uri
        self._shown = _display(uri)
        self._algorithms = frozenset(algorithms)
        self._clock = clock
        self._cooldown = cooldown
        self._max_age = max_age
        self._timeout = timeout
        self._transport = transport
        self._async_transport = async_transport
        self._lock = threading.Lock()
        self._keys: dict[str, _Entry] | None = None
        self._loaded_at = 0.0
        self._last_attempt = float("-inf")
        # The cooldown runs from the last refetch (not the first load), so a rotation just after
        # start-up is picked up at once and made-up kids still cost one fetch per cooldown.
        self._last_refetch = float("-inf")
        self._flight: Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lookups ---------------------------------------------------------------------------------

    def get(self, kid: str) -> JwksKey | None:
        """The key for ``kid`` if the current set has it; starts a background refresh when stale."""
        keys = self._keys
        if keys is None:
            return None
        now = self._clock()
        if (
            self._flight is None
            and now - self._loaded_at >= self._max_age
            and now - self._last_refetch >= self._cooldown
        ):
            self._refresh_in_background()
        entry = keys.get(kid)
        return entry.key if entry is not None else None

    def resolve_missing(self, kid: str) -> JwksKey | None:
        """For a kid ``get`` missed: load or refetch when the rules allow (blocking)."""
        plan = self._plan(kid)
        if plan is not None:
            flight, owner, first = plan
            if owner:
                self._run_sync(flight)
            try:
                flight.result(timeout=2 * self._timeout + 1)
            except Exception as err:
                if first:
                    raise self._unavailable(err) from err
        return self.get(kid)

    async def aresolve_missing(self, kid: str) -> JwksKey | None:
        """:meth:`resolve_missing` without blocking the event loop."""
        plan = self._plan(kid)
        if plan is not None:
            flight, owner, first = plan
            if owner:
                self._start_async(flight)
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(flight)), 2 * self._timeout + 1)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if first:
                    raise self._unavailable(err) from err
        return self.get(kid)

    def refresh(self) -> None:
        """Loads the key set now, whatever the cooldown; raises JwksUnavailableError on failure."""
        flight, owner = self._begin()
        if owner:
            self._run_sync(flight)
        try:
            flight.result(timeout=2 * self._timeout + 1)
        except Exception as err:
            raise self._unavailable(err) from err

    async def arefresh(self) -> None:
        """:meth:`refresh` for asyncio."""
        flight, owner = self._begin()
        if owner:
            self._start_async(flight)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(flight)), 2 * self._timeout + 1)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            raise self._unavailable(err) from err

    # -- flights ---------------------------------------------------------------------------------

    def _plan(self, kid: str) -> tuple[Future[None], bool, bool] | None:
        """(flight, owner, first load) when a fetch should be awaited; None when the kid stays unknown."""
        with self._lock:
            now = self._clock()
            first = self._keys is None
            if first:
                if self._flight is None and now - self._last_attempt < min(
                    FIRST_LOAD_RETRY_S, self._cooldown
                ):
                    raise JwksUnavailableError(
                        f"the issuer's JWKS at {self._shown} could not be loaded; retrying shortly"
                    )
            elif not KEYWARD_KID.fullmatch(kid) or (
                self._flight is None and now - self._last_refetch < self._cooldown
            ):
                return None
        flight, owner = self._begin()
        return flight, owner, first

    def _begin(self) -> tuple[Future[None], bool]:
        with self._lock:
            if self._flight is not None:
                return self._flight, False
            flight: Future[None] = Future()
            # Running: a cancelled waiter can no longer cancel the shared fetch.
            flight.set_running_or_notify_cancel()
            self._flight = flight
            self._last_attempt = self._clock()
            if self._keys is not None:
                self._last_refetch = self._last_attempt
            return flight, True

    def _finish(
        self, flight: Future[None], keys: dict[str, _Entry] | None, error: BaseException | None
    ) -> None:
        with self._lock:
            if keys is not None:
                self._keys = keys
                self._loaded_at = self._clock()
            self._flight = None
        if error is not None:
            flight.set_exception(error)
        else:
            flight.set_result(None)

    def _run_sync(self, flight: Future[None]) -> None:
        try:
            keys = self._fetch_sync()
        except BaseException as err:
            self._finish(flight, None, err)
            if not isinstance(err, Exception):
                raise
        else:
            self._finish(flight, keys, None)

    def _start_async(self, flight: Future[None]) -> None:
        # A task of its own: a request cancelled while waiting does not cancel the shared fetch.
        task = asyncio.get_running_loop().create_task(self._run_async(flight))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_async(self, flight: Future[None]) -> None:
        try:
            keys = await asyncio.wait_for(self._fetch_async(), self._timeout)
        except BaseException as err:
            self._finish(flight, None, err)
            if not isinstance(err, Exception):
                raise
        else:
            self._finish(flight, keys, None)

    def _refresh_in_background(self) -> None:
        flight, owner = self._begin()
        if not owner:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            threading.Thread(target=self._run_sync, args=(flight,), name="keyward-jwks", daemon=True).start()
        else:
            self._start_async(flight)

    def _unavailable(self, err: BaseException) -> JwksUnavailableError:
        return JwksUnavailableError(
            f"the issuer's JWKS at {self._shown} could not be loaded: {_describe(err)}"
        )

    # -- fetching --------------------------------------------------------------------------------

    def _fetch_sync(self) -> dict[str, _Entry]:
        deadline = time.monotonic() + self._timeout
        with (
            httpx.Client(transport=self._transport, timeout=self._timeout, follow_redirects=False) as client,
            client.stream("GET", self.uri, headers=_HEADERS) as res,
        ):
            body = _start_body(res)
            if res.is_stream_consumed:  # a transport that answered from memory (httpx.MockTransport)
                body = _from_memory(res)
            else:
                for chunk in res.iter_raw():
                    body.feed(chunk)
                    if time.monotonic() > deadline:
                        raise _FetchError("the JWKS endpoint did not answer in time")
        return parse_key_set(body.value(), self._algorithms, self._keys)

    async def _fetch_async(self) -> dict[str, _Entry]:
        async with (
            httpx.AsyncClient(
                transport=self._async_transport, timeout=self._timeout, follow_redirects=False
            ) as client,
            client.stream("GET", self.uri, headers=_HEADERS) as res,
        ):
            body = _start_body(res)
            if res.is_stream_consumed:
                body = _from_memory(res)
            else:
                async for chunk in res.aiter_raw():
                    body.feed(chunk)
        return parse_key_set(body.value(), self._algorithms, self._keys)
