"""The issuer's key set (JWKS), held in memory, and when it is (re)fetched (mirrors the Node SDK's
``verify/jwks.ts``). The fetch itself is ``_jwks_fetch.py``; one key, ``_jwk.py``.

Invariants:

- A known kid costs a dict lookup. An unknown kid (after a key rotation) refetches the set, but at
  most once per ``cooldown`` however many tokens with made-up kids arrive, and concurrent misses —
  threads and asyncio tasks alike — wait for the same fetch (one ``concurrent.futures.Future``).
- ``kid`` is only a dict key: never a path, a URL or anything fetched. Once a set is loaded, only
  kids shaped like Keyward's (RFC 7638 thumbprints) may cause a refetch.
- Only EC P-256 keys (and OKP Ed25519 ones when EdDSA is accepted) are kept, built from their public
  members only.
- Before the first successful load the verifier cannot judge any token: that is
  :class:`JwksUnavailableError` (an outage, never a verdict on the token). After it, a failed
  refetch keeps the keys held.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future

import httpx

from ._jwk import JwksKey, b64url_decode
from ._jwks_fetch import JwksSource, KeySet, describe, display
from .errors import KeywardError

__all__ = ["JwksCache", "JwksKey", "JwksUnavailableError", "b64url_decode"]

#: Before the first successful load there is nothing to serve, so failures are retried sooner.
FIRST_LOAD_RETRY_S = 1.0
#: Keyward's kids are RFC 7638 thumbprints (43 base64url characters); stricter than other IdPs'.
KEYWARD_KID = re.compile(r"[A-Za-z0-9._~+=-]{1,128}")

#: A fetch to wait for: (the shared future, whether this caller runs it, whether it is the first load).
_Flight = tuple["Future[None]", bool, bool]


class JwksUnavailableError(KeywardError):
    """The issuer's key set could not be loaded, so no token can be judged yet. An outage, not a
    verdict on the token: the middleware answers 503 ``jwks_unavailable``, never 401.

    Example::

        try:
            claims = verifier.verify(token)
        except JwksUnavailableError:
            return retry_later()
    """

    __module__ = "keyward.verify"

    def __init__(self, message: str) -> None:
        super().__init__("jwks_unavailable", message)


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
        self._source = JwksSource(uri, frozenset(algorithms), timeout, transport, async_transport)
        self._shown = display(uri)
        self._clock = clock
        self._cooldown = cooldown
        self._max_age = max_age
        #: How long a caller waits for a flight (the fetch, and its retry of a slow connect).
        self._wait_s = 2 * timeout + 1
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
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
        flight = self._plan(kid)
        if flight is not None:
            self._wait(flight)
        return self.get(kid)

    async def aresolve_missing(self, kid: str) -> JwksKey | None:
        """:meth:`resolve_missing` without blocking the event loop."""
        flight = self._plan(kid)
        if flight is not None:
            await self._await(flight)
        return self.get(kid)

    def refresh(self) -> None:
        """Loads the key set now, whatever the cooldown; raises JwksUnavailableError on failure."""
        self._wait((*self._begin(), True))

    async def arefresh(self) -> None:
        """:meth:`refresh` for asyncio."""
        await self._await((*self._begin(), True))

    # -- waiting (the only sync/async pair: running or awaiting the shared future) ---------------

    def _wait(self, flight: _Flight) -> None:
        future, owner, raises = flight
        if owner:
            self._run_sync(future)
        try:
            future.result(timeout=self._wait_s)
        except Exception as err:
            if raises:
                raise self._unavailable(err) from err

    async def _await(self, flight: _Flight) -> None:
        future, owner, raises = flight
        if owner:
            self._start_async(future)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self._wait_s)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            if raises:
                raise self._unavailable(err) from err

    # -- flights ---------------------------------------------------------------------------------

    def _plan(self, kid: str) -> _Flight | None:
        """The fetch to wait for, or None when the kid stays unknown (raises before a first load
        that failed just now)."""
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
        future, owner = self._begin()
        return future, owner, first

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

    def _land(self, flight: Future[None], keys: KeySet | None, error: BaseException | None) -> None:
        with self._lock:
            if keys is not None:
                self._keys = keys
                self._loaded_at = self._clock()
            self._flight = None
        if error is not None:
            flight.set_exception(error)
        else:
            flight.set_result(None)
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit: the waiters are told, then it goes on

    def _run_sync(self, flight: Future[None]) -> None:
        try:
            keys = self._source.fetch(self._keys)
        except BaseException as err:
            self._land(flight, None, err)
        else:
            self._land(flight, keys, None)

    def _start_async(self, flight: Future[None]) -> None:
        # A task of its own: a request cancelled while waiting does not cancel the shared fetch.
        task = asyncio.get_running_loop().create_task(self._run_async(flight))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_async(self, flight: Future[None]) -> None:
        try:
            keys = await asyncio.wait_for(self._source.afetch(self._keys), self._source.timeout)
        except BaseException as err:
            self._land(flight, None, err)
        else:
            self._land(flight, keys, None)

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
            f"the issuer's JWKS at {self._shown} could not be loaded: {describe(err)}"
        )
