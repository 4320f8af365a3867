"""The options of ``Keyward.connect`` / ``AsyncKeyward.connect``, validated once so a typo fails at start
with the setting's name, and the clock the client reads (tests pass a manual one)."""

from __future__ import annotations

import functools
import math
import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from ._limits import DEFAULT_LIMITS, Limits


class Clock(Protocol):
    """Time as the client sees it.

    ``time()`` is epoch seconds (``now()``, ``expires_at``, the time in StaleCredentialError);
    ``monotonic()`` measures silences and deadlines, and must keep counting while the host sleeps
    (a laptop lid closed for two days is two days without contact).

    Example::

        class ManualClock:
            def __init__(self) -> None:
                self.t = 1_700_000_000.0
            def time(self) -> float:
                return self.t
            def monotonic(self) -> float:
                return self.t
    """

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


def _suspend_aware_monotonic() -> Callable[[], float]:
    # CLOCK_BOOTTIME counts suspended time (Linux); CLOCK_MONOTONIC stops while the host sleeps,
    # which would let a credential revoked during a long sleep be served past max_stale.
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return time.monotonic
    try:
        time.clock_gettime(boottime)
    except OSError:  # pragma: no cover - a kernel without it
        return time.monotonic
    return functools.partial(time.clock_gettime, boottime)  # C all the way: ``get`` calls it


class SystemClock:
    """The real clock (wall time, and a monotonic clock that keeps counting through a host's sleep)."""

    time = staticmethod(time.time)
    monotonic = staticmethod(_suspend_aware_monotonic())


SYSTEM_CLOCK = SystemClock()

#: Below this, the questions a quiet connection triggers (at ½ and ¾ of max_stale) would come faster
#: than a round trip to a loaded server, and a heartbeat-sized pause would read as an outage.
MIN_MAX_STALE = 1.0
DAY = 86_400.0

Token = str | Callable[[], str]


@dataclass(frozen=True)
class Options:
    url: str
    token: Callable[[], str]
    max_stale: float
    limits: Limits
    poll_interval: float
    heartbeat_timeout: float
    backoff_base: float
    backoff_cap: float
    request_timeout: float
    clock: Clock
    random: Callable[[], float]

    def __repr__(self) -> str:  # never the token
        return f"Options(url={self.url!r}, max_stale={self.max_stale})"


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Keyward.connect: {name} must be a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"Keyward.connect: {name} must be a positive, finite number of seconds")
    return float(value)


def _url(url: object) -> str:
    if not isinstance(url, str):
        raise TypeError("Keyward.connect: url must be a str")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise ValueError("Keyward.connect: url must be an absolute http(s) URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("Keyward.connect: url must be an absolute http(s) URL")
    # A path prefix (a reverse proxy) is kept; query and fragment are not.
    return str(parsed.copy_with(query=None, fragment=None)).rstrip("/")


def _token(token: object) -> Callable[[], str]:
    if isinstance(token, str):
        if not token:
            raise ValueError("Keyward.connect: token must not be empty")
        return lambda: token
    if callable(token):
        return token
    raise TypeError("Keyward.connect: token must be a str or a zero-argument callable returning one")


def resolve_options(
    *,
    url: object,
    token: object,
    max_stale: object = DAY,
    limits: Limits | None = None,
    poll_interval: object = 15.0,
    heartbeat_timeout: object = 45.0,
    backoff_base: object = 0.5,
    backoff_cap: object = 30.0,
    request_timeout: object = 10.0,
    clock: Clock | None = None,
    random: Callable[[], float] | None = None,
) -> Options:
    """Validates every option once (TypeError for a wrong type, ValueError for a wrong value)."""
    stale = _seconds("max_stale", max_stale)
    if stale < MIN_MAX_STALE:
        raise ValueError(f"Keyward.connect: max_stale must be at least {MIN_MAX_STALE:g} second")
    if limits is not None and not isinstance(limits, Limits):
        raise TypeError("Keyward.connect: limits must be a keyward.Limits")
    return Options(
        url=_url(url),
        token=_token(token),
        max_stale=stale,
        limits=limits or DEFAULT_LIMITS,
        poll_interval=_seconds("poll_interval", poll_interval),
        heartbeat_timeout=_seconds("heartbeat_timeout", heartbeat_timeout),
        backoff_base=_seconds("backoff_base", backoff_base),
        backoff_cap=_seconds("backoff_cap", backoff_cap),
        request_timeout=_seconds("request_timeout", request_timeout),
        clock=clock or SYSTEM_CLOCK,
        random=random or _random.random,
    )


def current_token(opts: Options) -> str:
    """The token for the next request; a callable that answers something else is a TypeError."""
    token = opts.token()
    if not isinstance(token, str) or not token:
        raise TypeError("Keyward: the token callable must return a non-empty str")
    return token
