"""A server that answers garbage, huge bodies or endless lines: typed errors, bounded memory, the last
good values kept; and secrets never in a message, a repr or a log line."""

from __future__ import annotations

import json
import logging
import tracemalloc
from collections.abc import Iterator

import pytest

from client_support import JunkServer, fixed, repeat, wait_until
from keyward import Keyward, KeywardError, Limits, ResponseTooLargeError
from support.server import KeywardServer, unique

MiB = 1024 * 1024
CANARY = "sk-CANARY-7f3a9c"


@pytest.fixture
def junk() -> Iterator[JunkServer]:
    server = JunkServer().start()
    yield server
    server.stop()


def page(credentials: dict[str, str], cursor: str = "1") -> bytes:
    body = {"credentials": {n: {"value": v, "version": 1} for n, v in credentials.items()}, "removed": [],
            "cursor": cursor}  # fmt: skip
    return json.dumps(body).encode()


def test_endless_credentials_body_is_cut_at_the_limit_with_bounded_memory(junk: JunkServer) -> None:
    junk.routes["/v1/credentials"] = junk.pour(repeat(b"x" * 65536, 64 * MiB))
    limits = Limits(credentials_bytes=MiB)
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError) as info:
            Keyward.connect(junk.url, "kwk_x", limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code == "response_too_large" and info.value.limit == "credentials_bytes"
    assert "xxxx" not in str(info.value)
    assert peak < 4 * MiB  # the limit plus a few chunks, for an answer of up to 64 MiB
    wait_until(lambda: junk.sent)
    assert junk.cut == [True] and junk.sent[0] < 64 * MiB


def test_a_declared_huge_content_length_is_refused_before_reading(junk: JunkServer) -> None:
    junk.routes["/v1/credentials"] = fixed(200, b"{}", content_length=10**12)
    with pytest.raises(ResponseTooLargeError):
        Keyward.connect(junk.url, "kwk_x")


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json" + CANARY.encode(),
        b"[1, 2, 3]",
        b'"just a string"',
        b"[" * 100_000,
        b'{"credentials": []}',
        b'{"credentials": {"a": {"value": 1, "version": 1}}, "cursor": "1"}',
        b'{"credentials": {"a": {"value": "v", "version": "1"}}, "cursor": "1"}',
        b'{"credentials": {"a": {"value": "v", "version": true}}, "cursor": "1"}',
        b'{"credentials": {"a": {"value": "v", "version": 1, "expires_at": "tomorrow"}}, "cursor": "1"}',
        b'{"credentials": {"a": {"value": "v", "version": 1}}, "cursor": null}',
        b'{"credentials": {"a": {"value": "v", "version": 1}}, "cursor": "1", "removed": "a"}',
        b'{"credentials": {"a": "v"}, "cursor": "1"}',
    ],
)
def test_garbage_answers_are_invalid_response_and_never_quoted(junk: JunkServer, body: bytes) -> None:
    junk.routes["/v1/credentials"] = fixed(200, body)
    with pytest.raises(KeywardError) as info:
        Keyward.connect(junk.url, "kwk_x")
    assert info.value.code == "invalid_response"
    assert CANARY not in str(info.value)


def test_error_bodies_are_bounded_and_typed(junk: JunkServer) -> None:
    junk.routes["/v1/credentials"] = fixed(
        503, json.dumps({"error": {"code": "db_down", "message": "m" * 5000}}).encode()
    )
    with pytest.raises(KeywardError) as info:
        Keyward.connect(junk.url, "kwk_x")
    assert (info.value.code, info.value.status) == ("db_down", 503)
    assert len(info.value.message) <= 1000


def test_a_hundred_thousand_long_names_within_the_limit_load_fine(junk: JunkServer) -> None:
    creds = {f"{i:06d}" + "n" * 100: "v" for i in range(100_000)}
    junk.routes["/v1/credentials"] = fixed(200, page(creds))
    junk.routes["/v1/credentials/events"] = fixed(404, b"")
    with Keyward.connect(junk.url, "kwk_x", limits=Limits(credentials_bytes=64 * MiB)) as kw:
        assert kw.get("099999" + "n" * 100) == "v"
        assert len(kw._set.entries) == 100_000


@pytest.mark.parametrize(
    ("stream", "limit"),
    [
        (repeat(b"data: " + b"y" * 65536, 16 * MiB), "sse_line_chars"),  # one endless line
        (repeat(b"data: y\n" * 8192, 64 * MiB), "sse_event_lines"),  # an event of ~10^6+ lines
        (repeat(b"\r\n".join([b"data: " + b"z" * 60_000] * 4) + b"\r\n", 64 * MiB), "sse_event_chars"),
    ],
)
def test_oversized_stream_lines_and_events_are_cut_reported_and_last_values_served(
    junk: JunkServer, stream: Iterator[bytes], limit: str
) -> None:
    junk.routes["/v1/credentials"] = fixed(200, page({"openai": "sk-one"}))
    junk.routes["/v1/credentials/events"] = junk.pour(stream, content_type="text/event-stream")
    errors: list[KeywardError] = []
    tracemalloc.start()
    try:
        kw = Keyward.connect(junk.url, "kwk_x", backoff_base=5, limits=Limits(sse_event_chars=128 * 1024))
        kw.on_error(errors.append)
        wait_until(lambda: any(e.code == "response_too_large" for e in errors))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        err = next(e for e in errors if e.code == "response_too_large")
        assert isinstance(err, ResponseTooLargeError) and err.limit == limit
        assert kw.get("openai") == "sk-one"
        assert peak < 8 * MiB
        wait_until(lambda: junk.sent)
        assert junk.cut[0] and junk.sent[0] < 16 * MiB
    finally:
        kw.close()


def test_secrets_never_reach_messages_reprs_or_logs(
    keyward: KeywardServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keyward")
    name = unique("canary")
    _, key = keyward.admin.agent_with_credentials({name: CANARY})
    texts: list[str] = []
    with Keyward.connect(keyward.url, key) as kw:
        kw.on_error(lambda e: texts.append(repr(e) + str(e)))
        texts += [
            repr(kw),
            repr(kw.credential(name)),
            repr(kw._opts),
            str(vars(kw)["_opts"]),
        ]
        for bad in ("${credentials.nope}", {"a": "${credentials.nope} " + CANARY}):
            try:
                kw.resolve(bad)
            except KeywardError as e:
                texts.append(repr(e) + str(e))
        kw.on_change(lambda n, v: (_ for _ in ()).throw(ValueError(kw.get(name))))
        keyward.admin.set_credential(name, CANARY + "-2")
        wait_until(lambda: kw.get(name) == CANARY + "-2")
    with pytest.raises(KeywardError) as info:
        Keyward.connect(keyward.url, key + "x")
    texts.append(repr(info.value) + str(info.value))
    everything = "\n".join(texts) + caplog.text
    assert CANARY not in everything and key not in everything
