"""Answers an outsider controls cost bounded memory and time: a compression bomb is inflated a
bounded piece at a time against the body's limit, and a body dripping in is cut at the request's
time limit (httpx's timeouts are per read, so without that a drip holds the caller for ever)."""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from client_support import JunkServer
from keyward import Keyward, KeywardError, Limits, ResponseTooLargeError

MiB = 1024 * 1024


def gzip_of_zeros(total: int) -> Iterator[bytes]:
    """A gzip stream of ``total`` zero bytes, compressed as it is sent (about 1,000:1)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MiB)
    for _ in range(total // MiB):
        out = c.compress(block)
        if out:
            yield out
    yield c.flush()


def answer_compressed(chunks: Iterator[bytes]) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("content-type", "application/json")
        h.send_header("content-encoding", "gzip")
        h.send_header("connection", "close")
        h.end_headers()
        try:
            for chunk in chunks:
                h.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return answer


def drip(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("content-type", "application/json")
    h.send_header("content-length", "1000")
    h.end_headers()
    try:
        for _ in range(1000):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.1)
    except (BrokenPipeError, ConnectionResetError):
        pass


@pytest.fixture
def junk() -> Iterator[JunkServer]:
    server = JunkServer().start()
    yield server
    server.stop()


def test_a_compression_bomb_is_refused_at_the_limit_without_inflating_it(junk: JunkServer) -> None:
    junk.routes["/v1/credentials"] = answer_compressed(gzip_of_zeros(1024 * MiB))
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError) as caught:
            Keyward.connect(url=junk.url, token="kwk_x", limits=Limits(credentials_bytes=MiB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.limit == "credentials_bytes"
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB for a 1 MiB limit"


def test_a_compressed_answer_within_the_limit_is_read(junk: JunkServer) -> None:
    body = b'{"credentials": {"c": {"value": "v", "version": 1}}, "removed": [], "cursor": "1"}'
    junk.routes["/v1/credentials"] = answer_compressed(iter([gzip.compress(body)]))
    with Keyward.connect(url=junk.url, token="kwk_x") as kw:
        assert kw.get("c") == "v"


def test_broken_compression_is_an_invalid_response(junk: JunkServer) -> None:
    junk.routes["/v1/credentials"] = answer_compressed(iter([b"\x1f\x8b\x08\x00garbage-not-deflate"]))
    with pytest.raises(KeywardError) as caught:
        Keyward.connect(url=junk.url, token="kwk_x")
    assert caught.value.code == "invalid_response"


def test_a_dripping_body_is_cut_at_the_request_time_limit(junk: JunkServer) -> None:
    junk.routes["/v1/credentials"] = drip
    started = time.monotonic()
    with pytest.raises(KeywardError) as caught:
        Keyward.connect(url=junk.url, token="kwk_x", request_timeout=1)
    assert caught.value.code == "server_unreachable"
    # 1,000 bytes at 10 a second would take 100 s: the limit (1 s, plus one read) cut it.
    assert time.monotonic() - started < 20
