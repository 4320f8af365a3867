"""Bounded reading of Keyward's answers and its error bodies, for the sync and asyncio clients.

A body is read chunk by chunk and refused as soon as it passes its limit: the response is closed at
once, so a 3 GiB answer costs at most the limit plus one chunk; a compressed body is inflated a
bounded piece at a time against the same limit, and a body that drips in slower than the request's
time limit is cut off. A ``Content-Length`` above the
limit is refused before reading, but one within it is not believed (a compressed body decodes to
more; a broken proxy lies).
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

from ._limits import DEFAULT_LIMITS
from .errors import KeywardError, ResponseTooLargeError


@dataclass(frozen=True)
class BodyLimit:
    #: e.g. "the answer of GET /v1/credentials"; never holds a secret.
    what: str
    #: the name of the setting in ``Limits``, e.g. "credentials_bytes".
    limit: str
    max_bytes: int


def _declared_too_large(res: httpx.Response, limit: BodyLimit) -> bool:
    declared = res.headers.get("content-length", "").strip()
    return declared.isdigit() and int(declared) > limit.max_bytes


class _Body:
    """The bytes of one body as they arrive: raw, or decompressed a bounded piece at a time (never
    more than the room left plus one byte per step, so a compression bomb costs at most the limit),
    refused past the limit or past the deadline."""

    def __init__(self, res: httpx.Response, limit: BodyLimit, timeout: float | None) -> None:
        self.limit = limit
        self.status = res.status_code
        self.parts: list[bytes] = []
        self.size = 0
        self.deadline = None if timeout is None else time.monotonic() + timeout
        encoding = res.headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            self.decoder = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self.decoder = zlib.decompressobj(47 if encoding != "deflate" else zlib.MAX_WBITS)
        else:
            raise KeywardError("invalid_response", f"{limit.what} has an unsupported content encoding")
        if _declared_too_large(res, limit):
            self._too_large()

    def _too_large(self) -> None:
        raise ResponseTooLargeError(
            self.limit.what, self.limit.limit, self.limit.max_bytes, status=self.status
        )

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit.max_bytes:
            self._too_large()
        if data:
            self.parts.append(data)

    def feed(self, chunk: bytes) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise KeywardError("server_unreachable", f"{self.limit.what} did not arrive in time")
        if self.decoder is None:
            self._add(chunk)
            return
        try:
            self._add(self.decoder.decompress(chunk, self.limit.max_bytes - self.size + 1))
            while self.decoder.unconsumed_tail:
                tail = self.decoder.unconsumed_tail
                self._add(self.decoder.decompress(tail, self.limit.max_bytes - self.size + 1))
        except zlib.error:
            raise KeywardError("invalid_response", f"{self.limit.what} is not validly compressed") from None

    def read_already(self, res: httpx.Response) -> bytes:
        """A response read in full before it reached us (by a custom transport or an event hook):
        its decoded content is in memory already; it is still held to the limit."""
        self.decoder = None
        self._add(res.content)
        return self.result()

    def result(self) -> bytes:
        if self.decoder is not None:
            try:
                self._add(self.decoder.flush(self.limit.max_bytes - self.size + 1))
            except zlib.error:
                raise KeywardError(
                    "invalid_response", f"{self.limit.what} is not validly compressed"
                ) from None
        return b"".join(self.parts)


def read_bounded(res: httpx.Response, limit: BodyLimit, timeout: float | None = None) -> bytes:
    """The body of a streamed response, at most ``limit.max_bytes`` (decompressed) and, with
    ``timeout``, within that many seconds from now (a server dripping one byte per read timeout
    cannot hold the caller); raises ResponseTooLargeError or KeywardError."""
    try:
        body = _Body(res, limit, timeout)
        if res.is_stream_consumed:
            return body.read_already(res)
        for chunk in res.iter_raw():
            body.feed(chunk)
        return body.result()
    finally:
        res.close()


async def aread_bounded(res: httpx.Response, limit: BodyLimit, timeout: float | None = None) -> bytes:
    """:func:`read_bounded` for an asyncio response."""
    try:
        body = _Body(res, limit, timeout)
        if res.is_stream_consumed:
            return body.read_already(res)
        async for chunk in res.aiter_raw():
            body.feed(chunk)
        return body.result()
    finally:
        await res.aclose()


def parse_json_object(body: bytes, what: str) -> dict[str, Any]:
    """``body`` as a JSON object, or KeywardError ``invalid_response`` (the text is never quoted:
    whatever answered may have put a secret in it)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise KeywardError("invalid_response", f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise KeywardError("invalid_response", f"{what} is not a JSON object")
    return value


def error_from_body(status: int, body: bytes | None, headers: httpx.Headers) -> KeywardError:
    """The §4 error body (or RFC 6749's ``{error, error_description}``) as a KeywardError; a body that
    is neither makes an error from the status alone. The server's messages never hold a secret."""
    code, message, request_id = f"http_{status}", f"Keyward answered HTTP {status}", None
    try:
        parsed = json.loads(body) if body else None
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict):
            code = err["code"] if isinstance(err.get("code"), str) else code
            message = err["message"] if isinstance(err.get("message"), str) else message
            request_id = err["request_id"] if isinstance(err.get("request_id"), str) else None
        elif isinstance(err, str):
            code = err
            desc = parsed.get("error_description")
            message = desc if isinstance(desc, str) else message
    header_id = headers.get("x-request-id")
    return KeywardError(code[:100], message[:1000], status=status, request_id=request_id or header_id)


def http_error(
    res: httpx.Response, max_bytes: int = DEFAULT_LIMITS.response_bytes, timeout: float | None = None
) -> KeywardError:
    """The error of a streamed, failed response (its body read within ``max_bytes`` and ``timeout``)."""
    try:
        body: bytes | None = read_bounded(
            res, BodyLimit("an error answer", "response_bytes", max_bytes), timeout
        )
    except (KeywardError, httpx.HTTPError):
        body = None
    return error_from_body(res.status_code, body, res.headers)


async def ahttp_error(
    res: httpx.Response, max_bytes: int = DEFAULT_LIMITS.response_bytes, timeout: float | None = None
) -> KeywardError:
    """:func:`http_error` for an asyncio response."""
    try:
        body: bytes | None = await aread_bounded(
            res, BodyLimit("an error answer", "response_bytes", max_bytes), timeout
        )
    except (KeywardError, httpx.HTTPError):
        body = None
    return error_from_body(res.status_code, body, res.headers)


def unreachable(url: httpx.URL | str, cause: BaseException) -> KeywardError:
    """A request failed before an answer: down, refused, reset, timed out."""
    origin = httpx.URL(str(url))
    why = "timed out" if isinstance(cause, httpx.TimeoutException) else type(cause).__name__
    err = KeywardError(
        "server_unreachable", f"cannot reach Keyward at {origin.scheme}://{origin.netloc.decode()}: {why}"
    )
    err.__cause__ = cause
    return err


def is_outage(err: BaseException) -> bool:
    """True for failures that say nothing about this agent's rights: the server is down or unwell."""
    return isinstance(err, KeywardError) and (
        err.code in ("server_unreachable", "response_too_large", "invalid_response")
        or (err.status or 0) >= 500
    )


def join_url(base: str, path: str) -> str:
    """``base`` (a path prefix is kept) + ``path`` (which starts with "/")."""
    return base.rstrip("/") + path
