"""What the sync (``client.py``) and asyncio (``aio.py``) drivers share around their I/O: the
requests they build and what each way of failing means. The decisions of the loop are
``_loop_core.py``; the drivers keep only their sending, reading and waiting.
"""

from __future__ import annotations

import socket
from typing import Literal

import httpx

from ._http import BodyLimit, join_url, unreachable
from ._loop_core import LoopCore, background_error, silent_stream_error
from ._options import Options
from .errors import KeywardError

#: How an events answer that is not a stream ends the attempt, or ``None`` for an open stream;
#: ``"refused"``: an HTTP error whose body the driver reads.
StreamAnswer = tuple[Literal["failed", "unavailable"], KeywardError | None] | Literal["refused"] | None


class ApiCall:
    """One ``request_json`` call as sent: URL, headers, body limit. ``needs_token``: the agent's own
    token goes in ``Authorization`` (no ``auth_header`` given; ``""`` sends none).

    Example::

        call = ApiCall(opts, "POST", "/v1/audit/events", auth_header=None, max_bytes=None)
        if call.needs_token:
            call.authorize(agent_token)
    """

    __slots__ = ("headers", "limit", "needs_token", "url", "what")

    def __init__(
        self, opts: Options, method: str, path: str, auth_header: str | None, max_bytes: int | None
    ) -> None:
        self.url = join_url(opts.url, path)
        self.headers = {"accept": "application/json"}
        if auth_header:
            self.headers["authorization"] = auth_header
        self.needs_token = auth_header is None
        self.what = f"the answer of {method} {path.split('?', 1)[0]}"
        self.limit = BodyLimit(self.what, "response_bytes", max_bytes or opts.limits.response_bytes)

    def authorize(self, token: str) -> None:
        self.headers["authorization"] = f"Bearer {token}"


def stream_timeout(opts: Options) -> httpx.Timeout:
    """The event stream's: silence for ``heartbeat_timeout`` is httpx's read timeout (a half-open
    connection or a buffering proxy never errors by itself, so silence is the only sign of death)."""
    t = opts.request_timeout
    return httpx.Timeout(connect=t, read=opts.heartbeat_timeout, write=t, pool=t)


def stream_answer(res: httpx.Response) -> StreamAnswer:
    """What the answer to the events request ends in (see :data:`StreamAnswer`)."""
    verdict = LoopCore.classify_stream(
        res.status_code, res.headers.get("content-type", ""), res.headers.get("content-encoding", "")
    )
    if verdict == "open":
        return None
    if verdict == "unavailable":
        return "unavailable", None
    if res.is_success:
        return "failed", KeywardError("invalid_response", "the event stream is compressed")
    return "refused"


def stream_failure(exc: Exception, opts: Options) -> KeywardError:
    """Why a stream connection ended in an exception, as the error ``on_error`` is told."""
    if isinstance(exc, KeywardError):
        return exc
    if isinstance(exc, httpx.ReadTimeout):
        return silent_stream_error(opts.heartbeat_timeout)
    if isinstance(exc, httpx.TransportError):
        return unreachable(opts.url, exc)
    return background_error(exc)


def interrupt(res: httpx.Response) -> None:
    """Wakes a thread out of a blocking read of ``res``: shutting the socket down ends the read at
    once (closing it from another thread would not, on Linux)."""
    stream = res.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
