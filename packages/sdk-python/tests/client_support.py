"""Helpers of the client tests: waiting for a condition with a deadline, an httpx transport that hides
or counts paths, and a tiny HTTP server that answers what a test tells it (garbage, huge bodies,
endless lines) for the fault and security tests. Keyward itself is never faked for the happy paths."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


def error_of(call: Callable[[], object]) -> BaseException | None:
    """What ``call`` raised, or None."""
    try:
        call()
    except BaseException as exc:
        return exc
    return None


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.005) -> float:
    """Polls ``check`` until it returns something truthy (exceptions count as "not yet"); returns the
    time it took. Fails the test at the deadline with the last exception, if any."""
    start = time.monotonic()
    last: BaseException | None = None
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
            last = None
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last error: {last!r})")


class PathTransport(httpx.BaseTransport):
    """A real HTTP transport that answers ``status`` itself for paths ending in one of ``hidden``, and
    records (path, status) of everything else."""

    def __init__(self, hidden: tuple[str, ...] = (), status: int = 404) -> None:
        self.inner = httpx.HTTPTransport()
        self.hidden = hidden
        self.status = status
        self.log: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(self.hidden):
            return httpx.Response(self.status, request=request)
        res = self.inner.handle_request(request)
        with self.lock:
            self.log.append((request.url.path, res.status_code))
        return res

    def statuses(self, path: str) -> list[int]:
        with self.lock:
            return [s for p, s in self.log if p == path]

    def close(self) -> None:
        self.inner.close()


Body = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class JunkServer:
    """Answers each path with the function registered for it (others: 404). ``sent`` counts the bytes
    each endless answer wrote before the client hung up."""

    routes: dict[str, Body] = field(default_factory=dict)
    sent: list[int] = field(default_factory=list)
    cut: list[bool] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> JunkServer:
        junk = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                route = junk.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                route(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def pour(self, chunks: Iterator[bytes], content_type: str = "application/json") -> Body:
        """An answer without Content-Length that writes ``chunks`` until the client hangs up."""

        def body(h: BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            h.send_header("content-type", content_type)
            h.send_header("connection", "close")
            h.end_headers()
            total, cut = 0, False
            try:
                for chunk in chunks:
                    h.wfile.write(chunk)
                    total += len(chunk)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                cut = True
            self.sent.append(total)
            self.cut.append(cut)

        return body


def fixed(
    status: int, body: bytes, content_type: str = "application/json", content_length: int | None = None
) -> Body:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(body) if content_length is None else content_length))
        h.end_headers()
        try:
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return answer


def repeat(chunk: bytes, max_bytes: int) -> Iterator[bytes]:
    """``chunk`` again and again, up to ``max_bytes`` (a test's junk is finite even if unread)."""
    sent = 0
    while sent < max_bytes:
        yield chunk
        sent += len(chunk)
