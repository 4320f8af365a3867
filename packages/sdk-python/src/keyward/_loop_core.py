"""The decisions of the freshness loop, sans I/O: one core for the sync and the asyncio client, whose
drivers (``client.py``, ``aio.py``) only do the requests and the waiting. The Node SDK's
``freshness.ts`` and ``event-stream.ts``, reshaped as a state machine.

Two workers drive it. The *stream worker* holds ``GET /v1/credentials/events`` open, feeds its bytes
to the parser and asks ``stream_ended`` how long to wait before reconnecting. The *fetch worker*
makes every ``GET /v1/credentials`` after the first: the catch-up after each (re)connect, the fetch
after a ``changed``/``removed`` event, polling while the stream is down, the retries, the probes of a
quiet connection and explicit ``refresh()`` calls. One worker means single flight; a flag means
bursts coalesce: events arriving during a fetch make exactly one more.

Times are the clock's ``monotonic()`` seconds. Drivers call every method under one lock (sync) or on
the loop's thread (asyncio); readers only read ``set.entries`` and ``staleness.stale_at``.
"""

from __future__ import annotations

import codecs
import json
import math
from dataclasses import dataclass
from typing import Literal

from ._backoff import Backoff
from ._credential_set import Change, CredentialSet, Page, parse_page
from ._freshness import Staleness
from ._http import BodyLimit, join_url, parse_json_object
from ._options import Options
from ._sse import SseEvent, SseParser
from .errors import KeywardError, StaleCredentialError

#: After the server said it has no event stream, poll for this long before asking again.
STREAM_RETRY = 300.0
#: Longest sleep of the fetch worker: a wall clock that jumped or a host that slept is noticed soon.
MAX_IDLE = 60.0
#: The first wait before asking again when an answer is behind the stream (then backing off).
BEHIND_RETRY = 0.05
_NO_STREAM = (404, 405, 501)

StreamEnd = Literal["ended", "failed", "unavailable"]


@dataclass(frozen=True)
class Fetch:
    """One ``GET /v1/credentials`` the fetch worker is to make."""

    since: str | None
    etag: str | None
    #: Whether it served a wanted sync (an event, a connect, a refresh): on failure it is retried.
    wanted: bool
    #: The refresh tickets it answers.
    ticket: int


class LoopCore:
    """State and rules of one client's background work (see the module docstring).

    Example::

        core = LoopCore(opts)
        core.load(first_page, now)
        core.stream_opened(now)          # the catch-up fetch is now due
        fetch = core.begin_fetch(now)    # -> GET /v1/credentials?since=<fetch.since>
        changes = core.fetch_succeeded(fetch, page, full=False, now=now)
    """

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.set = CredentialSet()
        self.staleness = Staleness(opts.max_stale)
        self.closed = False
        self.stream_live = False
        self.last_event_id = ""
        #: The newest event id of the live stream as a number: a fetch answered behind it came from a
        #: server (another worker or replica) that has not applied the change yet.
        self._event_cursor: int | None = None
        self._behind_backoff = Backoff(min(opts.backoff_base, BEHIND_RETRY), opts.backoff_cap, opts.random)
        self._stream_backoff = Backoff(opts.backoff_base, opts.backoff_cap, opts.random)
        self._fetch_backoff = Backoff(opts.backoff_base, opts.backoff_cap, opts.random)
        self._wanted = False
        self._retry_at: float | None = None
        self._poll_at: float | None = None
        self._requested = 0
        #: The last ticket answered, and the error of the fetch that answered it.
        self.answered = 0
        self.answer_error: KeywardError | None = None

    # -- requests -------------------------------------------------------------------------------

    def credentials_request(self, since: str | None, etag: str | None) -> tuple[str, dict[str, str]]:
        url = join_url(self.opts.url, "/v1/credentials")
        headers = {"accept": "application/json"}
        if since is not None:
            url += "?since=" + _query_escape(since)
        if etag is not None:
            headers["if-none-match"] = etag
        return url, headers

    def events_request(self) -> tuple[str, dict[str, str]]:
        # identity: the stream is read raw, so a compressed stream cannot inflate past the line limit.
        headers = {"accept": "text/event-stream", "cache-control": "no-cache", "accept-encoding": "identity"}
        if self.last_event_id:
            headers["last-event-id"] = self.last_event_id
        return join_url(self.opts.url, "/v1/credentials/events"), headers

    @staticmethod
    def classify_stream(
        status: int, content_type: str, content_encoding: str
    ) -> Literal["open", "unavailable", "failed"]:
        """What an answer to the events request means: a stream, no stream here (poll), or an error."""
        is_sse = content_type.lower().startswith("text/event-stream")
        if status in _NO_STREAM or (200 <= status < 300 and not is_sse):
            return "unavailable"
        if not 200 <= status < 300 or content_encoding.lower() not in ("", "identity"):
            return "failed"
        return "open"

    @staticmethod
    def cursor_rejected(fetch: Fetch, err: KeywardError) -> bool:
        """A cursor the server no longer knows (another server, a restored database): start over."""
        return fetch.since is not None and err.status in (400, 410)

    # -- the set --------------------------------------------------------------------------------

    def load(self, page: Page, mono: float, epoch: float) -> None:
        self.set.load(page)
        self.staleness.contact(mono, epoch)

    def contact(self, mono: float, epoch: float) -> None:
        self.staleness.contact(mono, epoch)

    # -- fetch worker -----------------------------------------------------------------------------

    def request_fetch(self) -> int:
        """A fetch is wanted now (it joins one that has not started yet); returns its ticket."""
        self._wanted = True
        self._retry_at = None
        self._requested += 1
        return self._requested

    def fetch_due(self, mono: float) -> bool:
        if self.closed:
            return False
        if self._wanted and (self._retry_at is None or mono >= self._retry_at):
            return True
        if not self.stream_live and self._poll_at is not None and mono >= self._poll_at:
            return True
        return self.staleness.probe_due(mono)

    def next_wake(self, mono: float) -> float:
        """Until when the fetch worker may sleep (it is also woken by ``request_fetch``)."""
        times = [mono + MAX_IDLE]
        if self._wanted:
            times.append(self._retry_at if self._retry_at is not None else mono)
        if not self.stream_live and self._poll_at is not None:
            times.append(self._poll_at)
        probe = self.staleness.next_probe_at()
        if probe is not None:
            times.append(probe)
        if not self.staleness.stale_reported and self.staleness.stale_at != -math.inf:
            times.append(self.staleness.stale_at)
        return min(times)

    def stale_error(self, mono: float) -> StaleCredentialError | None:
        """The error to report once when the values have just turned stale."""
        if not self.staleness.stale_report_due(mono):
            return None
        return StaleCredentialError(self.staleness.last_contact, self.opts.max_stale)

    def begin_fetch(self) -> Fetch:
        fetch = Fetch(self.set.cursor, self.set.etag, self._wanted, self._requested)
        self._wanted = False
        self._retry_at = None
        return fetch

    def fetch_succeeded(
        self, fetch: Fetch, page: Page | None, full: bool, mono: float, epoch: float
    ) -> list[Change]:
        """``page`` None is a 304 (nothing changed since the ETag)."""
        self.staleness.contact(mono, epoch)
        self._fetch_backoff.succeed()
        self._answer(fetch, None)
        if not self.stream_live:
            self._poll_at = mono + self.opts.poll_interval
        changes = [] if page is None or self.closed else self.set.apply(page, full)
        self._unless_behind(mono)
        return changes

    def _unless_behind(self, mono: float) -> None:
        """The stream announced a change this answer does not hold yet: the server that answered
        (another worker or replica behind a load balancer) has not applied it. Ask again, with
        backoff, until an answer catches up with the stream; said to nobody, as it is not a fault."""
        cursor = _as_int(self.set.cursor)
        if self._event_cursor is None or cursor is None or cursor >= self._event_cursor:
            self._behind_backoff.succeed()
            return
        if not self._wanted:
            self._wanted = True
            self._retry_at = mono + self._behind_backoff.fail()

    def fetch_failed(self, fetch: Fetch, err: KeywardError, mono: float) -> None:
        self._answer(fetch, err)
        delay = self._fetch_backoff.fail()
        if fetch.wanted and not self._wanted:
            self._wanted = True
            self._retry_at = mono + delay
        if not self.stream_live:
            self._poll_at = mono + delay

    def fetch_settled(
        self, fetch: Fetch, outcome: tuple[Page | None, bool] | Exception, mono: float, epoch: float
    ) -> tuple[list[Change], list[KeywardError]]:
        """A fetch ended with ``(page, full)`` or an exception: the bookkeeping, and what the driver
        then reports, changes first (a fetch's failure never ends the loop)."""
        if isinstance(outcome, Exception):
            err = outcome if isinstance(outcome, KeywardError) else background_error(outcome)
            self.fetch_failed(fetch, err, mono)
            return [], [err]
        page, full = outcome
        changes = self.fetch_succeeded(fetch, page, full, mono, epoch)
        unavailable = page.unavailable if page is not None else ()
        return changes, [KeywardError(u.code, u.message) for u in unavailable]

    def _answer(self, fetch: Fetch, err: KeywardError | None) -> None:
        if fetch.ticket > self.answered:
            self.answered = fetch.ticket
            self.answer_error = err

    # -- stream worker --------------------------------------------------------------------------

    def stream_opened(self, mono: float, epoch: float) -> None:
        """The server accepted the stream: polling stops, and a catch-up fetch brings what changed
        while it was down (or between the first load and now), replay or no replay."""
        self.stream_live = True
        self._poll_at = None
        # Ids of an earlier connection may belong to another server: this stream's own count.
        self._event_cursor = None
        self.staleness.contact(mono, epoch)
        self.request_fetch()

    def stream_event(self, event: SseEvent) -> tuple[list[Change], bool]:
        """An event: (changes to report now, whether the fetch worker was woken)."""
        self.last_event_id = event.last_event_id
        if event.type not in ("changed", "removed"):
            return [], False  # unknown types: newer servers
        try:
            data = json.loads(event.data)
        except (ValueError, RecursionError):
            data = None  # unreadable: the fetch below still brings whatever changed
        name = data.get("name") if isinstance(data, dict) else None
        changes: list[Change] = []
        if event.type == "changed" and isinstance(name, str):
            held = self.set.entries.get(name)
            if held is not None and held.version == data.get("version"):
                return [], False
        elif event.type == "removed" and isinstance(name, str):
            # Dropped at once; the fetch moves the cursor past the removal.
            removed = self.set.remove(name)
            changes = [removed] if removed is not None else []
        seq = _as_int(event.last_event_id)
        if seq is not None and (self._event_cursor is None or seq > self._event_cursor):
            self._event_cursor = seq
        self.request_fetch()
        return changes, True

    def stream_ended(self, kind: StreamEnd, got_data: bool, err: KeywardError | None, mono: float) -> float:
        """The stream is gone; polling takes over. Returns the wait (seconds) before reconnecting."""
        self.stream_live = False
        if self._poll_at is None:
            self._poll_at = mono + self.opts.poll_interval
        if kind == "unavailable":
            return STREAM_RETRY
        # A stream cut for an oversized line or event did deliver bytes, but it is a fault that would
        # recur at once: it backs off like any failure instead of reconnecting at the base delay.
        if got_data and (err is None or err.code != "response_too_large"):
            self._stream_backoff.succeed()
        return self._stream_backoff.fail()

    def close(self) -> None:
        self.closed = True
        self.stream_live = False
        self.staleness.end()
        self.set.clear()


def credentials_limit(opts: Options) -> BodyLimit:
    return BodyLimit("the answer of GET /v1/credentials", "credentials_bytes", opts.limits.credentials_bytes)


def parse_credentials(body: bytes, etag: str | None) -> Page:
    """A 200 answer of ``GET /v1/credentials`` as a page; KeywardError ``invalid_response`` otherwise."""
    return parse_page(parse_json_object(body, "the answer of GET /v1/credentials"), etag)


class StreamSession:
    """One connection of the event stream: bytes in (raw, undecoded), changes out. The UTF-8 decoder
    and the parser are bounded; an oversized line or event raises ResponseTooLargeError from ``feed``.
    """

    def __init__(self, core: LoopCore) -> None:
        self._core = core
        self._parser = SseParser(core.last_event_id, core.opts.limits)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.got_data = False

    def feed(self, raw: bytes, mono: float, epoch: float) -> tuple[list[Change], bool]:
        """Bytes arrived (an event or a heartbeat: a contact). Returns (changes, fetch worker woken)."""
        self.got_data = True
        self._core.contact(mono, epoch)
        changes: list[Change] = []
        woke = False
        for event in self._parser.push(self._decoder.decode(raw)):
            more, wake = self._core.stream_event(event)
            changes += more
            woke = woke or wake
        return changes, woke

    def finish(self) -> None:
        self._core.last_event_id = self._parser.last_event_id


def _query_escape(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def closed_error() -> KeywardError:
    """What every call on a closed client raises."""
    return KeywardError("closed", "the Keyward client is closed")


def silent_stream_error(heartbeat_timeout: float) -> KeywardError:
    return KeywardError(
        "event_stream_failed", f"event stream silent for {heartbeat_timeout:g} s; reconnecting"
    )


def background_error(exc: BaseException) -> KeywardError:
    """A background failure that is not a KeywardError (a token callable raising, a transport bug)."""
    # Only the type: a message from a token callable or a transport may hold anything.
    return KeywardError("invalid_response", f"background request failed: {type(exc).__name__}")


def _as_int(value: str | None) -> int | None:
    """A cursor or event id as the server writes them (decimal digits), else None (not compared)."""
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)
