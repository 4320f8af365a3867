"""What the sync and the asyncio client share and that does no I/O: reading the held values
(``get``, ``credential``, ``resolve``, ``now``) and the listeners (``on_change``, ``on_error``)."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TypeVar

from ._credential_set import Change
from ._loop_core import LoopCore, closed_error
from ._options import Options
from ._resolve import resolve_placeholders
from ._types import Credential
from .errors import CredentialExpiredError, KeywardError, StaleCredentialError, UnknownCredentialError

T = TypeVar("T")
ChangeListener = Callable[[str, "int | None"], object]
ErrorListener = Callable[[KeywardError], object]

logger = logging.getLogger("keyward")


def helper_module(name: str) -> ModuleType:
    """A sibling module written apart from the client (tokens, delegation, tools), imported when
    first used so the client works before or without it."""
    return importlib.import_module(f"keyward.{name}")


class ClientBase:
    """The read side of a connected client. Readers take no lock: the held set is an immutable dict
    swapped whole, and staleness is one monotonic deadline (``-inf`` once closed)."""

    def __init__(self, opts: Options) -> None:
        self._opts = opts
        self._core = LoopCore(opts)
        self._set = self._core.set
        self._staleness = self._core.staleness
        self._monotonic = opts.clock.monotonic
        self._change_listeners: tuple[ChangeListener, ...] = ()
        self._error_listeners: tuple[ErrorListener, ...] = ()
        self._listeners_lock = threading.Lock()

    def get(self, name: str) -> str:
        """The value of a credential, from memory: no I/O, no lock, no waiting.

        Raises :class:`UnknownCredentialError` for a name this agent cannot read (also a
        ``KeyError``), :class:`StaleCredentialError` when Keyward has been unreachable for longer than
        ``max_stale``, :class:`CredentialExpiredError` for a token provider's token past its expiry,
        KeywardError ``closed`` after ``close()``, TypeError for a name that is not a str.

        Example::

            client = OpenAI(api_key=kw.get("openai"))
        """
        if self._monotonic() >= self._staleness.stale_at:
            self._raise_state()
        try:
            entry = self._set.entries[name]
        except (KeyError, TypeError):
            raise self._unknown(name) from None
        # Only token providers' values expire, so only they pay for reading the wall clock.
        if entry.expires_at is not None and entry.expires_at <= self._opts.clock.time():
            raise CredentialExpiredError(name)
        return entry.value

    def credential(self, name: str) -> Credential:
        """The held entry (value, version, ``expires_at``), raising like :meth:`get` except that an
        expired token is returned as it is (the token helpers decide what to do with it).

        Example::

            entry = kw.credential("azure_openai")
            print(entry.version, entry.expires_at)
        """
        if self._monotonic() >= self._staleness.stale_at:
            self._raise_state()
        try:
            return self._set.entries[name]
        except (KeyError, TypeError):
            raise self._unknown(name) from None

    def resolve(self, obj: T) -> T:
        """A deep copy of ``obj`` with every ``${credentials.<name>}`` placeholder replaced by that
        value, also inside longer strings. dicts, lists and tuples are copied (keys are never
        substituted); other objects are kept as they are. Raises like :meth:`get`, so nothing
        half-resolved is returned; TypeError for a cycle or nesting deeper than 100 levels.

        Example::

            config = kw.resolve({"db": {"url": "postgres://app:${credentials.db_password}@db/app"}})
        """
        return resolve_placeholders(obj, self.get)

    def now(self) -> float:
        """Epoch seconds as the client sees them (a test's clock if one was given).

        Example::

            left = kw.credential("azure_openai").expires_at - kw.now()
        """
        return self._opts.clock.time()

    def on_change(self, callback: Callable[[str, int | None], object]) -> Callable[[], None]:
        """Calls ``callback(name, version)`` after a credential got a new value, and
        ``callback(name, None)`` after one was removed (deleted or no longer granted: ``get`` now
        raises). It runs on the client's background thread (sync) or loop (asyncio), after the whole
        answer was applied; it must not block for long. An exception it raises is logged (logger
        ``"keyward"``, its type only) and stops neither the client nor the other callbacks. Returns a
        function that unsubscribes it.

        Example::

            def rebuild(name: str, version: int | None) -> None:
                if name == "openai":
                    app.client = OpenAI(api_key=kw.get("openai"))
            unsubscribe = kw.on_change(rebuild)
        """
        if not callable(callback):
            raise TypeError("on_change: callback must be callable")
        with self._listeners_lock:
            self._change_listeners = (*self._change_listeners, callback)
        return lambda: self._unsubscribe_change(callback)

    def on_error(self, callback: Callable[[KeywardError], object]) -> Callable[[], None]:
        """Calls ``callback(error)`` for each failure of the background work (Keyward unreachable, a
        refused key, an oversized answer, the values turning stale). The client keeps retrying; this
        is for logs and alerts (each is also logged at WARNING on logger ``"keyward"``). Returns a
        function that unsubscribes it.

        Example::

            kw.on_error(lambda err: metrics.increment("keyward_errors", tags={"code": err.code}))
        """
        if not callable(callback):
            raise TypeError("on_error: callback must be callable")
        with self._listeners_lock:
            self._error_listeners = (*self._error_listeners, callback)
        return lambda: self._unsubscribe_error(callback)

    def __repr__(self) -> str:  # never a value
        state = "closed" if self._core.closed else f"{len(self._set.entries)} credentials"
        return f"{type(self).__name__}(url={self._opts.url!r}, {state})"

    # -- internals ------------------------------------------------------------------------------

    def _unsubscribe_change(self, callback: ChangeListener) -> None:
        with self._listeners_lock:
            self._change_listeners = _without(self._change_listeners, callback)

    def _unsubscribe_error(self, callback: ErrorListener) -> None:
        with self._listeners_lock:
            self._error_listeners = _without(self._error_listeners, callback)

    def _unknown(self, name: object) -> Exception:
        if not isinstance(name, str):
            return TypeError(f"a credential name must be a str, not {type(name).__name__}")
        return UnknownCredentialError(name)

    def _raise_state(self) -> None:
        if self._core.closed:
            raise closed_error()
        raise StaleCredentialError(self._staleness.last_contact, self._opts.max_stale)

    def _report_changes(self, changes: Iterable[Change]) -> None:
        for change in changes:
            for listener in self._change_listeners:
                try:
                    listener(change.name, change.version)
                except Exception as exc:  # a listener's failure must not stop the loop
                    logger.error("keyward: an on_change callback raised %s", type(exc).__name__)

    def _report(self, changes: Iterable[Change], errors: Iterable[KeywardError]) -> None:
        self._report_changes(changes)
        for err in errors:
            self._report_error(err)

    def _report_error(self, err: KeywardError) -> None:
        if self._core.closed:
            return
        logger.warning("keyward: %s: %s", err.code, err.message)
        for listener in self._error_listeners:
            try:
                listener(err)
            except Exception as exc:
                logger.error("keyward: an on_error callback raised %s", type(exc).__name__)

    def _clear_listeners(self) -> None:
        with self._listeners_lock:
            self._change_listeners = ()
            self._error_listeners = ()


def _without(listeners: tuple[T, ...], callback: T) -> tuple[T, ...]:
    out = list(listeners)
    for i in range(len(out) - 1, -1, -1):
        if out[i] == callback:
            del out[i]
            break
    return tuple(out)
