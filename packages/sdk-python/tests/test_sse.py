"""The event-stream parser: line endings, comments, multi-line data, ids, and its bounds."""

from __future__ import annotations

import pytest

from keyward import Limits, ResponseTooLargeError
from keyward._sse import SseParser


def feed(parser: SseParser, *chunks: str) -> list[tuple[str, str, str]]:
    return [(e.type, e.data, e.last_event_id) for c in chunks for e in parser.push(c)]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_line_endings(eol: str) -> None:
    text = f'event: changed{eol}data: {{"name":"a"}}{eol}id: 7{eol}{eol}'
    assert feed(SseParser(), text) == [("changed", '{"name":"a"}', "7")]


def test_chunks_of_any_size_and_a_crlf_split_across_chunks() -> None:
    text = "event: removed\r\ndata: x\r\n\r\ndata: y\r\n\r\n"
    for size in (1, 2, 3, 7):
        parser = SseParser()
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert feed(parser, *chunks) == [("removed", "x", ""), ("message", "y", "")]
    parser = SseParser()
    assert feed(parser, "data: a\r", "\n", "\r\n") == [
        ("message", "a", "")
    ]  # CR|LF then CRLF: one blank line


def test_comments_multiline_data_ids_and_events_without_data() -> None:
    parser = SseParser(last_event_id="3")
    out = feed(
        parser,
        "\ufeff: keep-alive\n\n",
        "data: one\ndata:two\ndata\n\n",
        "id: 9\nevent: x\n\n",
        "data: z\n\n",
    )
    assert out == [("message", "one\ntwo\n", "3"), ("message", "z", "9")]
    assert parser.last_event_id == "9"
    assert feed(parser, "id: a\0b\ndata: q\n\n") == [("message", "q", "9")]  # an id with NUL is ignored
    assert feed(parser, "retry: 1\nfoo: bar\n\n") == []


def test_a_line_over_the_limit_is_refused_even_before_its_end() -> None:
    parser = SseParser(limits=Limits(sse_line_chars=100))
    parser.push("data: " + "x" * 94)  # exactly 100 characters: allowed
    with pytest.raises(ResponseTooLargeError) as info:
        parser.push("x")
    assert info.value.limit == "sse_line_chars"


def test_event_chars_and_lines_limits_and_comments_count_towards_neither() -> None:
    parser = SseParser(limits=Limits(sse_event_chars=21, sse_event_lines=3))
    assert feed(parser, ": " + "c" * 10 + "\n" * 1, *[": hb\n"] * 100, "data: a\ndata: b\ndata: c\n\n") == [
        ("message", "a\nb\nc", "")
    ]
    with pytest.raises(ResponseTooLargeError) as info:
        feed(parser, "d\n" * 4)
    assert info.value.limit == "sse_event_lines"
    with pytest.raises(ResponseTooLargeError) as info:
        feed(
            SseParser(limits=Limits(sse_event_chars=21, sse_event_lines=3)),
            "data: 0123456789\ndata: 0123456789\n",
        )
    assert info.value.limit == "sse_event_chars"


def test_a_million_lines_event_stops_at_the_line_limit() -> None:
    parser = SseParser()
    with pytest.raises(ResponseTooLargeError):
        parser.push("data: y\n" * 1_000_000)
