"""A bounded Server-Sent Events parser (WHATWG HTML §9.2.6), sans I/O: fed decoded text in chunks of any
size, it returns the events completed by each chunk. The Node SDK's ``sse-parser.ts``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._limits import DEFAULT_LIMITS, Limits
from .errors import ResponseTooLargeError

_EOL = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SseEvent:
    type: str
    data: str
    #: The stream's last event id after this event (what a reconnect sends as ``Last-Event-ID``).
    last_event_id: str


class SseParser:
    """Lines end in CRLF, LF or CR (a CRLF may be split across chunks); ``data`` lines accumulate; ``id``
    persists across events; a blank line dispatches; an event without data is not dispatched; comments
    (``: …``, Keyward's heartbeats) are dropped; ``retry`` is ignored (the client's backoff decides).

    Bounded: a line longer than ``limits.sse_line_chars`` (even one still waiting for its end), or an
    event whose field lines add up to more than ``sse_event_chars`` or number more than
    ``sse_event_lines``, raises :class:`ResponseTooLargeError` from ``push`` before more than one chunk
    past the limit is held. Comments count towards neither: nothing of them is kept.

    Example::

        parser = SseParser()
        events = parser.push("event: changed\\ndata: {\\"name\\": \\"openai\\"}\\n\\n")
        assert events[0].type == "changed"
    """

    def __init__(self, last_event_id: str = "", limits: Limits = DEFAULT_LIMITS) -> None:
        self.last_event_id = last_event_id
        self._limits = limits
        self._buffer = ""
        self._type = ""
        self._data: list[str] = []
        self._has_data = False
        self._id = last_event_id
        self._skip_lf = False
        self._started = False
        self._event_chars = 0
        self._event_lines = 0

    def push(self, chunk: str) -> list[SseEvent]:
        """Parses ``chunk``; returns the events it completed."""
        text = chunk
        if not self._started and text:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        events: list[SseEvent] = []
        start = 0
        for m in _EOL.finditer(text):
            self._check_line(len(self._buffer) + m.start() - start)
            line = self._buffer + text[start : m.start()]
            self._buffer = ""
            if m.end() == len(text) and m.group() == "\r":
                self._skip_lf = True  # a CRLF may be split across two chunks
            start = m.end()
            event = self._line(line)
            if event is not None:
                events.append(event)
        # Checked before appending: an endless line without a line break is refused at the limit.
        self._check_line(len(self._buffer) + len(text) - start)
        self._buffer += text[start:]
        return events

    def _check_line(self, length: int) -> None:
        if length > self._limits.sse_line_chars:
            raise ResponseTooLargeError(
                "a line of the event stream", "sse_line_chars", self._limits.sse_line_chars
            )

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        self._event_chars += len(line)
        self._event_lines += 1
        limits = self._limits
        if self._event_chars > limits.sse_event_chars:
            raise ResponseTooLargeError(
                "an event of the event stream", "sse_event_chars", limits.sse_event_chars
            )
        if self._event_lines > limits.sse_event_lines:
            raise ResponseTooLargeError(
                "an event of the event stream", "sse_event_lines", limits.sse_event_lines
            )
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._type = value
        elif field == "data":
            self._data.append(value)
            self._has_data = True
        elif field == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> SseEvent | None:
        self.last_event_id = self._id
        event = SseEvent(self._type or "message", "\n".join(self._data), self._id) if self._has_data else None
        self._type = ""
        self._data = []
        self._has_data = False
        self._event_chars = 0
        self._event_lines = 0
        return event
