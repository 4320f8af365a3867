"""How long the held values may be served: the last successful contact with Keyward, and when to ask
Keyward itself whether it is still there. The Node SDK's ``staleness.ts``, sans I/O."""

from __future__ import annotations

import math

#: Points of a silence, as fractions of max_stale, at which the client asks the server itself. Two
#: questions: one failing for a passing reason (a reset connection) is not enough to go stale.
ASK_AT = (0.5, 0.75)


class Staleness:
    """Tracks the last successful contact; ``stale_at`` is the monotonic deadline ``get`` compares the
    clock with (one float comparison: the read path must stay a dict lookup's cost).

    Stale must mean "unreachable that long", not "quiet that long": a connected stream carries only a
    heartbeat every 15 s and polling runs every ``poll_interval``, both possibly longer than a short
    max_stale. So after half of max_stale without a word (and again at three quarters) ``probe_due``
    says to ask the server (a conditional request: a 304 when nothing changed); its answer is a contact.

    Example::

        s = Staleness(max_stale=10.0)
        s.contact(mono=100.0, epoch=1.7e9)
        assert s.probe_due(105.0) and not s.probe_due(106.0) and s.probe_due(107.5)
        assert s.stale_at == 110.0
    """

    __slots__ = (
        "_asked",
        "_contact_mono",
        "_ended",
        "last_contact",
        "max_stale",
        "stale_at",
        "stale_reported",
    )

    def __init__(self, max_stale: float) -> None:
        self.max_stale = max_stale
        #: Epoch seconds of the last contact (for StaleCredentialError).
        self.last_contact = 0.0
        self._contact_mono = -math.inf
        #: Monotonic time from which ``get`` raises; -inf before the first contact and after close.
        self.stale_at = -math.inf
        self.stale_reported = False
        self._asked = 0
        self._ended = False

    def contact(self, mono: float, epoch: float) -> None:
        if self._ended:  # an answer still in flight at close must not reopen the reads
            return
        self.last_contact = epoch
        self._contact_mono = mono
        self.stale_at = mono + self.max_stale
        self.stale_reported = False
        self._asked = 0

    def end(self) -> None:
        """After close: every read fails the deadline check."""
        self._ended = True
        self.stale_at = -math.inf

    def next_probe_at(self) -> float | None:
        if self._asked >= len(ASK_AT):
            return None
        return self._contact_mono + self.max_stale * ASK_AT[self._asked]

    def probe_due(self, mono: float) -> bool:
        """True once per point passed since the last contact (after a sleep, several passed make one)."""
        due = self._asked
        while due < len(ASK_AT) and self._contact_mono + self.max_stale * ASK_AT[due] <= mono:
            due += 1
        if due == self._asked:
            return False
        self._asked = due
        return True

    def stale_report_due(self, mono: float) -> bool:
        """True once when the deadline has passed (for the ``on_error`` report and the log)."""
        if self.stale_reported or mono < self.stale_at or self.stale_at == -math.inf:
            return False
        self.stale_reported = True
        return True
