"""The freshness rules without I/O, on a manual clock: probes of a quiet connection, staleness,
polling, coalescing of events, stream backoff."""

from __future__ import annotations

from keyward import KeywardError
from keyward._credential_set import Page, parse_page, parse_rfc3339
from keyward._loop_core import STREAM_RETRY, LoopCore
from keyward._options import resolve_options
from keyward._sse import SseEvent
from keyward._types import Credential


def core(**opts: float) -> LoopCore:
    return LoopCore(resolve_options(url="http://k", token="t", random=lambda: 0.5, **opts))  # type: ignore[arg-type]


def page(cursor: str, **values: str) -> Page:
    return Page({n: Credential(n, v, 1) for n, v in values.items()}, [], cursor, None)


def test_a_quiet_connection_is_probed_at_half_and_three_quarters_then_goes_stale() -> None:
    c = core(max_stale=10, poll_interval=1e6)
    c.load(page("1", a="A"), 100.0, 1e9)
    c.stream_opened(100.0, 1e9)
    c.fetch_succeeded(c.begin_fetch(), None, False, 100.0, 1e9)  # the catch-up: 304
    assert not c.fetch_due(104.9)
    assert c.next_wake(104.9) == 105.0
    assert c.fetch_due(105.0) and not c.fetch_due(105.1)  # one question at 1/2
    c.fetch_failed(c.begin_fetch(), KeywardError("server_unreachable", "down"), 105.1)
    assert c.fetch_due(107.5) and not c.fetch_due(109.0)  # one at 3/4, then none
    assert c.stale_error(109.99) is None
    err = c.stale_error(110.0)
    assert err is not None and err.code == "stale_credentials" and c.staleness.stale_at == 110.0
    assert c.stale_error(111.0) is None  # reported once
    c.contact(112.0, 1e9 + 12)  # back: the deadline moves, questions start over
    assert c.staleness.stale_at == 122.0 and c.fetch_due(117.0)


def test_events_coalesce_and_a_held_version_is_ignored() -> None:
    c = core()
    c.load(page("1", a="A"), 0.0, 0.0)
    assert c.stream_event(SseEvent("changed", '{"name":"a","version":1}', "1")) == ([], False)
    for _ in range(50):
        c.stream_event(SseEvent("changed", '{"name":"a","version":2}', "2"))
    assert c.fetch_due(0.0)
    fetch = c.begin_fetch()
    assert not c.fetch_due(0.0)  # fifty events, one fetch
    assert fetch.since == "1"
    changes, woke = c.stream_event(SseEvent("removed", '{"name":"a"}', "3"))
    assert woke and [(x.name, x.version) for x in changes] == [("a", None)] and "a" not in c.set.entries
    c.stream_event(SseEvent("changed", "not json", "4"))
    assert c.fetch_due(0.0)  # unreadable: fetch anyway
    assert c.stream_event(SseEvent("other", "{}", "5")) == ([], False)
    assert c.last_event_id == "5"


def test_polling_while_the_stream_is_down_and_stream_backoff() -> None:
    c = core(poll_interval=15, backoff_base=0.5, backoff_cap=30)
    c.load(page("1"), 0.0, 0.0)
    assert c.stream_ended("unavailable", False, None, 0.0) == STREAM_RETRY
    assert not c.fetch_due(14.9) and c.fetch_due(15.0)
    fetch = c.begin_fetch()
    c.fetch_failed(fetch, KeywardError("server_unreachable", "x"), 15.0)
    assert c.fetch_due(15.25) and not fetch.wanted  # the poll retries after the backoff (0.5 * 0.5)
    delays = [c.stream_ended("failed", False, None, 0.0) for _ in range(3)]
    assert delays == [0.25, 0.5, 1.0]
    assert c.stream_ended("ended", True, None, 0.0) == 0.25  # bytes arrived: a success, starts over
    too_large = KeywardError("response_too_large", "x")
    assert c.stream_ended("failed", True, too_large, 0.0) == 0.5  # not a success


def test_a_failed_wanted_fetch_is_retried_and_answers_refresh_tickets() -> None:
    c = core()
    c.load(page("1", a="A"), 0.0, 0.0)
    c.stream_opened(0.0, 0.0)
    ticket = c.request_fetch()
    fetch = c.begin_fetch()
    err = KeywardError("server_unreachable", "x")
    c.fetch_failed(fetch, err, 1.0)
    assert c.answered == ticket and c.answer_error is err
    assert not c.fetch_due(1.0) and c.fetch_due(1.25)
    changes = c.fetch_succeeded(c.begin_fetch(), page("2", a="A2", b="B"), False, 2.0, 2.0)
    assert sorted((x.name, x.version) for x in changes) == [("a", 1), ("b", 1)]
    assert c.set.cursor == "2"
    gone = c.fetch_succeeded(c.begin_fetch(), page("3", b="B"), True, 3.0, 3.0)  # a full page
    assert [(x.name, x.version) for x in gone] == [("a", None)]


def test_cursor_rejection_and_stream_answers() -> None:
    c = core()
    c.load(page("7"), 0.0, 0.0)
    c.request_fetch()
    fetch = c.begin_fetch()
    assert LoopCore.cursor_rejected(fetch, KeywardError("invalid_request", "x", status=400))
    assert not LoopCore.cursor_rejected(fetch, KeywardError("invalid_key", "x", status=401))
    assert LoopCore.classify_stream(200, "text/event-stream; charset=utf-8", "") == "open"
    assert LoopCore.classify_stream(200, "application/json", "") == "unavailable"
    assert LoopCore.classify_stream(404, "", "") == "unavailable"
    assert LoopCore.classify_stream(503, "", "") == "failed"
    assert LoopCore.classify_stream(200, "text/event-stream", "gzip") == "failed"
    url, headers = c.credentials_request("7", '"e"')
    assert url == "http://k/v1/credentials?since=7" and headers["if-none-match"] == '"e"'


def test_rfc3339_and_expires_at() -> None:
    assert parse_rfc3339("2024-01-01T00:00:00Z") == 1704067200.0
    assert parse_rfc3339("2024-01-01T01:00:00.5+01:00") == 1704067200.5
    for bad in ("2024-13-01T00:00:00Z", "yesterday", "2024-01-01", "2" * 1000):
        assert parse_rfc3339(bad) is None
    token = {"value": "v", "version": 2, "expires_at": "2024-01-01T00:00:00.000Z"}
    body = {"credentials": {"t": token}, "cursor": 5, "unavailable": {"u": {"code": "token_refresh_failed"}}}
    p = parse_page(body, '"x"')
    assert p.credentials["t"].expires_at == 1704067200.0 and p.cursor == "5"
    assert p.unavailable[0].code == "token_refresh_failed"


def test_an_answer_behind_the_stream_is_asked_again_until_it_catches_up() -> None:
    # The stream's server applied change 5; the fetch went to another worker or replica that had
    # not yet (a load balancer between them): its answer (cursor 4, or a 304) must not end it.
    c = core(backoff_base=0.5, backoff_cap=30)
    c.load(page("4", a="A"), 0.0, 0.0)
    c.stream_opened(0.0, 0.0)
    c.fetch_succeeded(c.begin_fetch(), None, False, 0.0, 0.0)  # the catch-up: nothing new yet
    assert not c.fetch_due(0.0)
    c.stream_event(SseEvent("changed", '{"name":"a","version":2}', "5"))
    c.fetch_succeeded(c.begin_fetch(), None, False, 0.0, 0.0)  # 304 from a server behind
    assert not c.fetch_due(0.0) and c.fetch_due(0.05)  # asked again, soon
    c.fetch_succeeded(c.begin_fetch(), page("4", a="A"), False, 0.05, 0.0)  # still behind
    assert not c.fetch_due(0.06) and c.fetch_due(0.15)  # backing off
    c.fetch_succeeded(c.begin_fetch(), page("5", a="B"), False, 0.15, 0.0)  # caught up
    assert c.set.entries["a"].value == "B"
    assert not c.fetch_due(100.0)
    # A new connection's ids may be another server's: not held against answers any more.
    c.stream_opened(200.0, 0.0)
    c.fetch_succeeded(c.begin_fetch(), page("3", a="B"), True, 200.0, 0.0)
    assert not c.fetch_due(200.1)
