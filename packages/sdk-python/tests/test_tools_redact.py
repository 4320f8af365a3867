"""Unit tests of the redactor (keyward._redact), the injection plan and the audit queue's bounds."""

from __future__ import annotations

import base64
import html
import json
import threading
import urllib.parse
from collections import namedtuple
from dataclasses import dataclass
from typing import Any, cast

import pytest

from keyward import KeywardError
from keyward._redact import MAX_DEPTH, TOO_DEEP, Redactor, Tally, redact_value
from keyward._tool_audit import AuditError, AuditQueue
from keyward._tool_inject import default_env_var, plan_injection

SECRET = "s3cr3t/value+with space&ü€𝄞-0123456789"


def forms(s: str) -> dict[str, str]:
    raw = s.encode()
    b64, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    return {
        "raw": s,
        "b64": b64,
        "b64 unpadded": b64.rstrip("="),
        "b64url": url,
        "b64url unpadded": url.rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "url": urllib.parse.quote(s, safe=""),
        "form": urllib.parse.quote_plus(s),
        "url all": "".join(f"%{b:02X}" for b in raw),
        "json": json.dumps(s)[1:-1],
        "json ascii": json.dumps(s, ensure_ascii=True)[1:-1],
        "json slash": json.dumps(s)[1:-1].replace("/", "\\/"),
        "html": "".join(f"&#{ord(c)};" for c in s),
        "html escape": html.escape(s),
        "folded": s[:12] + "\r\n" + s[12:],
        "in basic": base64.b64encode(b"user:" + raw).decode(),
        "in b64 blob k=1": base64.b64encode(b"x" + raw + b"tail").decode(),
        "in b64 blob k=2": base64.b64encode(b"xy" + raw + b"tail").decode(),
    }


@pytest.mark.parametrize("kind", list(forms(SECRET)))
def test_every_encoding_is_redacted(kind: str) -> None:
    form = forms(SECRET)[kind]
    out, count = Redactor([SECRET]).text(f"before {form} after")
    assert count == 1 and out.startswith("before ") and out.endswith(" after")
    assert "[redacted]" in out
    for other in forms(SECRET).values():
        if len(other) >= 12:
            assert other not in out


def test_text_without_a_secret_is_untouched_and_counts_nothing() -> None:
    text = "%41%42 \\u0041 &amp; \r\n plain"
    assert Redactor([SECRET]).text(text) == (text, 0)
    assert Redactor([]).text(text) == (text, 0)


def test_bytes_that_are_not_utf8_pass_through() -> None:
    data = b"\xff\xfe" + SECRET.encode() + b"\x00\x80"
    out, count = Redactor([SECRET]).bytes(data)
    assert (out, count) == (b"\xff\xfe[redacted]\x00\x80", 1)


def test_values_are_copied_deeply_with_their_shapes() -> None:
    Point = namedtuple("Point", "x y")

    @dataclass
    class Row:
        name: str
        n: int

    cyclic: list[Any] = [SECRET]
    cyclic.append(cyclic)
    value = {"a": [SECRET, (1, SECRET)], SECRET: {SECRET}, "p": Point(SECRET, 2), "row": Row(SECRET, 3),
             "buf": bytearray(SECRET.encode()), "err": ValueError(SECRET), "cyc": cyclic}  # fmt: skip
    tally = Tally()
    out: Any = redact_value(value, Redactor([SECRET]), tally)
    r = "[redacted]"
    assert out["a"] == [r, (1, r)] and out[r] == {r}
    assert out["p"] == Point(r, 2) and isinstance(out["p"], Point)
    assert out["row"] == {"name": r, "n": 3} and out["buf"] == bytearray(r.encode())
    assert out["err"] == f"ValueError: {r}"
    assert out["cyc"][0] == r and out["cyc"][1] is out["cyc"]
    assert tally.count == 9
    assert cast(Any, value)["a"][0] == SECRET  # the input is left as it was


def test_nesting_deeper_than_the_bound_is_replaced_not_walked() -> None:
    deep: Any = SECRET
    for _ in range(MAX_DEPTH * 50):  # far past the recursion limit
        deep = [deep]
    tally = Tally()
    out = redact_value(deep, Redactor([SECRET]), tally)
    for _ in range(MAX_DEPTH):
        out = out[0]
    assert out == TOO_DEEP and tally.count == 1
    at_bound: Any = SECRET
    for _ in range(MAX_DEPTH - 1):
        at_bound = [at_bound]
    out = redact_value(at_bound, Redactor([SECRET]), Tally())
    for _ in range(MAX_DEPTH - 1):
        out = out[0]
    assert out == "[redacted]"


def test_a_large_escape_dense_result_is_redacted_whole() -> None:
    # 4 MiB of escapes of every scheme and near-misses of the secret, with it planted at the end.
    near = urllib.parse.quote(SECRET[:-1], safe="") + "\\u0041&#65;\n"
    text = near * (4 * 1024 * 1024 // len(near)) + json.dumps(SECRET, ensure_ascii=True)
    out, count = Redactor([SECRET]).text(text)
    assert count == 1 and out.endswith('"[redacted]"')


def test_injection_plans_fail_at_wrap_time() -> None:
    assert default_env_var("aliyun-ak.v2") == "ALIYUN_AK_V2"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"names": [], "inject": "params"}, "non-empty"),
        ({"names": ["a", "a"], "inject": "params"}, "twice"),
        ({"names": ["a"], "inject": "files"}, "inject must be"),
        ({"names": ["a"], "inject": "params", "env": {"A": "a"}}, "needs inject"),
        ({"names": ["a"], "inject": "env", "env": {"1A": "a"}}, "not an environment variable"),
        ({"names": ["a", "b"], "inject": "env", "env": {"B": "a"}}, "same environment variable"),
        ({"names": ["a", "b"], "inject": "headers"}, "must say where"),
        ({"names": ["a"], "inject": "headers", "headers": {"X": "{b}"}}, "not in names"),
        ({"names": ["a"], "inject": "headers", "headers": {"X Y": "{a}"}}, "not a header name"),
    ]
    for kwargs, message in cases:
        with pytest.raises(TypeError, match=message):
            plan_injection(**kwargs)


class BlockingRequester:
    """Holds every audit request until released; counts what arrived."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def request_json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        assert self.release.wait(30)
        with self.lock:
            self.received.append(kw["json"])
        return {"recorded": True}

    def agent_token(self) -> str:
        return "kwk_agent"


def test_the_audit_backlog_is_bounded_and_drops_are_counted_and_reported() -> None:
    requester = BlockingRequester()
    queue = AuditQueue(requester, in_flight=2, backlog=3)
    errors: list[AuditError] = []
    for i in range(10):
        queue.send({"tool": f"t{i}", "user": "user:u", "outcome": "ok", "redactions": 0}, errors.append)
    # 2 in flight (or about to be), 3 waiting: whatever is past the backlog is dropped at once.
    assert queue.dropped == len(errors) >= 5
    assert {e.code for e in errors} == {"audit_dropped"}
    requester.release.set()
    assert queue.flush(10)
    assert len(requester.received) + queue.dropped == 10


def test_an_audit_refusal_is_reported_not_retried() -> None:
    class Refusing(BlockingRequester):
        def request_json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
            with self.lock:
                self.received.append(kw["json"])
            raise KeywardError("invalid_request", "body.user: must be user:<id>", status=400)

    requester = Refusing()
    errors: list[AuditError] = []
    queue = AuditQueue(requester)
    queue.send({"tool": "t", "user": "bad", "outcome": "ok", "redactions": 0}, errors.append)
    assert queue.close(10)
    assert len(requester.received) == 1 and [e.code for e in errors] == ["invalid_request"]
    assert errors[0].event["tool"] == "t"
