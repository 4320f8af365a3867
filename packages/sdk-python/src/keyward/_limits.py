"""How much the SDK reads from a server before it stops.

A server that is broken, hostile or impersonated (a proxy, a DNS mistake) must not be able to grow
an agent's memory without bound. Each default sits far above anything Keyward sends, so only a
fault ever meets it. The same settings and defaults as the Node SDK's ``limits``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Response limits of one client (``Keyward.connect(limits=Limits(...))``)."""

    #: Largest body of ``GET /v1/credentials``, in bytes (the whole granted set).
    credentials_bytes: int = 16 * MiB
    #: Largest body of any other answer (errors, ``/v1/tools/credentials``, ``/oauth/token``), in bytes.
    response_bytes: int = MiB
    #: Longest line of the event stream, in characters.
    sse_line_chars: int = 64 * 1024
    #: Largest event of the event stream (all its field lines together), in characters.
    sse_event_chars: int = MiB
    #: Most field lines in one event of the event stream (Keyward sends three).
    sse_event_lines: int = 1000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise TypeError(f"limits.{f.name} must be a positive integer")


DEFAULT_LIMITS = Limits()
