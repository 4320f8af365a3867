"""Exponential backoff with full jitter (the Node SDK's ``backoff.ts``)."""

from __future__ import annotations

from collections.abc import Callable


class Backoff:
    """The n-th consecutive failure waits a uniform random time in [0, min(cap, base · 2^n)).

    Full jitter (rather than a fixed or "equal" jitter) spreads a thousand clients that lost the
    same server over the whole window, so they do not come back in step.

    Example::

        backoff = Backoff(0.5, 30.0, random.random)
        delay = backoff.fail()  # in [0, 0.5)
        delay = backoff.fail()  # in [0, 1.0)
        backoff.succeed()       # the next failure starts over at 0.5
    """

    __slots__ = ("_base", "_cap", "_failures", "_random")

    def __init__(self, base: float, cap: float, random: Callable[[], float]) -> None:
        self._base = base
        self._cap = cap
        self._random = random
        self._failures = 0

    @property
    def failures(self) -> int:
        """Consecutive failures since the last success."""
        return self._failures

    def fail(self) -> float:
        """Records a failure; returns how long to wait (seconds) before the next attempt."""
        ceiling = min(self._cap, self._base * 2 ** min(self._failures, 30))
        self._failures += 1
        return float(self._random() * ceiling)

    def succeed(self) -> None:
        self._failures = 0
