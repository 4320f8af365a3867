"""The one place where secrets are removed from what a tool returns or raises (SPEC §7).

A secret can leave a tool in more forms than its own characters: services and libraries wrap it in
base64 (standard or URL alphabet, padded or not, or inside a longer base64 text such as
``Basic base64(user:secret)``), hex (either case), URL escapes, JSON string escapes or HTML
character references, and a long value may come back folded over several lines. The Node SDK's
``redaction/`` does the same; this is its Python port, in one pass per call rather than a stream.

How: each secret expands to a few literal patterns (raw, base64 forms, hex forms; ``secret_forms``).
The text is searched as it is and through "views" with one escaping scheme undone (URL, JSON,
HTML), all with line breaks removed; what any view finds is mapped back to the text's positions
and replaced by ``[redacted]``. An encoder may escape any characters it likes: the view decodes
them all, so which ones it chose does not matter.

Bounds: the cost is a few ``str.find`` scans (C, linear) per pattern per view plus one regex pass
per view that has escapes; nested values deeper than ``MAX_DEPTH`` are replaced whole, never
walked by recursion without end.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import re
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any

MARKER = "[redacted]"
#: Patterns derived from a secret (its base64 inside longer text) shorter than this are left out:
#: they would match ordinary text. A secret's own whole forms are always kept.
MIN_DERIVED = 8
#: Nested containers deeper than this are replaced by one marker instead of being walked.
MAX_DEPTH = 100
TOO_DEEP = "[redacted: nested too deeply]"

_BREAKS = r"[\r\n]+"
# Each view: the escapes it undoes, and line breaks (which decode to nothing).
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2})+|" + _BREAKS)
_JSON = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\[\"\\/bfnrt]|" + _BREAKS
)
_HTML = re.compile(r"&#[xX][0-9a-fA-F]{1,16};?|&#[0-9]{1,16};?|&(?:amp|lt|gt|quot|apos);|" + _BREAKS)
_FOLD = re.compile(_BREAKS)
_JSON_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "", "r": "", "t": "\t"}
_HTML_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _strip_breaks(s: str) -> str:
    return s.replace("\r", "").replace("\n", "")


def _decode_percent(m: re.Match[str]) -> str:
    tok = m.group()
    if tok[0] != "%":
        return ""
    raw = bytes(int(tok[i + 1 : i + 3], 16) for i in range(0, len(tok), 3))
    return _strip_breaks(raw.decode("utf-8", "surrogateescape"))


def _decode_json(m: re.Match[str]) -> str:
    tok = m.group()
    if tok[0] != "\\":
        return ""
    if tok[1] != "u":
        return _JSON_SIMPLE[tok[1]]
    if len(tok) == 12:
        hi, lo = int(tok[2:6], 16), int(tok[8:12], 16)
        return chr(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
    return _strip_breaks(chr(int(tok[2:6], 16)))


def _decode_html(m: re.Match[str]) -> str:
    tok = m.group()
    if tok[0] != "&":
        return ""
    if tok[1] != "#":
        return _HTML_NAMED[tok[1:-1]]
    digits = tok[2:].rstrip(";")
    cp = int(digits[1:], 16) if digits[:1] in ("x", "X") else int(digits)
    if cp == 0 or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
        return tok  # not a character: stays as written
    return _strip_breaks(chr(cp))


_VIEWS: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    ("\r\n", _FOLD, lambda m: ""),
    ("%", _PERCENT, _decode_percent),
    ("\\", _JSON, _decode_json),
    ("&", _HTML, _decode_html),
)


def _base64_core(raw: bytes, k: int, urlsafe: bool) -> str:
    """The base64 characters of ``raw`` preceded by ``k`` unknown bytes that depend on ``raw`` alone
    (character i covers bits [6i, 6i+6); the secret covers bits [8k, 8k+8n))."""
    shifted = bytes(k) + raw
    enc = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(shifted).decode("ascii").rstrip("=")
    start, stop = -(-8 * k // 6), 8 * (k + len(raw)) // 6
    return enc[start:stop]


def secret_forms(secret: str) -> list[str]:
    """The literal strings under which ``secret`` is searched for (each view decodes escapes first).

    Example::

        >>> "c2VjcmV0LXZhbHVl" in secret_forms("secret-value")
        True
    """
    raw = secret.encode("utf-8", "surrogateescape")
    forms: dict[str, None] = {}

    def add(form: str, derived: bool = False) -> None:
        form = _strip_breaks(form)
        if form and not (derived and len(form) < MIN_DERIVED):
            forms[form] = None

    add(secret)
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        whole = enc(raw).decode("ascii")
        add(whole)
        add(whole.rstrip("="))
    add(raw.hex())
    add(raw.hex().upper())
    for k in range(3):
        add(_base64_core(raw, k, urlsafe=False), derived=True)
        add(_base64_core(raw, k, urlsafe=True), derived=True)
    if " " in secret:  # form encoding's "+" for a space ("+" is also itself, so it is not undone)
        add(secret.replace(" ", "+"))
    return list(forms)


class _View:
    """``text`` with the escapes of one scheme decoded, and the way back to the text's positions."""

    def __init__(self, text: str, pattern: re.Pattern[str], decode: Callable[[re.Match[str]], str]) -> None:
        parts: list[str] = []
        self.vstarts: list[int] = []
        self.tokens: list[tuple[int, int, int]] = []  # (view end, source start, source end)
        src = view = 0
        for m in pattern.finditer(text):
            s, e = m.span()
            parts.append(text[src:s])
            view += s - src
            decoded = decode(m)
            parts.append(decoded)
            self.vstarts.append(view)
            view += len(decoded)
            self.tokens.append((view, s, e))
            src = e
        parts.append(text[src:])
        self.text = "".join(parts)

    def start(self, p: int) -> int:
        i = bisect_right(self.vstarts, p) - 1
        if i < 0:
            return p
        vend, sstart, send = self.tokens[i]
        return sstart if p < vend else send + (p - vend)

    def end(self, p: int) -> int:
        q = p - 1
        i = bisect_right(self.vstarts, q) - 1
        if i < 0:
            return p
        vend, _, send = self.tokens[i]
        return send if q < vend else send + (q - vend) + 1


class Redactor:
    """Replaces every known form of the given secrets with ``[redacted]`` and counts replacements.

    Short values: a secret of a few characters is also removed wherever those characters occur by
    chance; give tools credentials of 8 characters or more (real keys are far longer).

    Example::

        r = Redactor(["s3cr3t-value-123"])
        text, count = r.text("token=czNjcjN0LXZhbHVlLTEyMw==")  # ("token=[redacted]", 1)
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: dict[str, None] = {}
        for s in secrets:
            if s:
                forms.update(dict.fromkeys(secret_forms(s)))
        # Longest first: a range found for a longer form covers the shorter ones inside it.
        self._forms = sorted(forms, key=len, reverse=True)

    @property
    def active(self) -> bool:
        return bool(self._forms)

    def text(self, text: str) -> tuple[str, int]:
        """``text`` redacted, and the number of replacements."""
        if not self._forms or not text:
            return text, 0
        ranges: list[tuple[int, int]] = []
        self._scan(text, None, ranges)
        for introducers, pattern, decode in _VIEWS:
            if any(c in text for c in introducers):
                self._scan(text, _View(text, pattern, decode), ranges)
        if not ranges:
            return text, 0
        ranges.sort()
        merged: list[list[int]] = []
        for s, e in ranges:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out: list[str] = []
        at = 0
        for s, e in merged:
            out.append(text[at:s])
            out.append(MARKER)
            at = e
        out.append(text[at:])
        return "".join(out), len(merged)

    def bytes(self, data: bytes) -> tuple[bytes, int]:
        """``data`` redacted (any bytes: what is not UTF-8 passes through unchanged)."""
        text, count = self.text(data.decode("utf-8", "surrogateescape"))
        return (text.encode("utf-8", "surrogateescape"), count) if count else (data, 0)

    def _scan(self, text: str, view: _View | None, ranges: list[tuple[int, int]]) -> None:
        hay = text if view is None else view.text
        for form in self._forms:
            at = hay.find(form)
            while at >= 0:
                end = at + len(form)
                ranges.append((at, end) if view is None else (view.start(at), view.end(end)))
                at = hay.find(form, end)


class Tally:
    """Replacements counted across one tool call."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


_SAFE_SCALARS = (
    int, float, complex, bool, type(None), datetime.date, datetime.time, datetime.timedelta,
    decimal.Decimal, uuid.UUID, enum.Enum,
)  # fmt: skip


def redact_value(value: Any, r: Redactor, tally: Tally) -> Any:
    """A redacted copy of ``value``: strings, bytes, dict keys and values, lists, tuples
    (namedtuples keep their class), sets. An exception becomes its redacted description (str).
    Any other object is replaced by a dict of its redacted fields (dataclasses, pydantic models via
    ``model_dump``, else ``vars``) or, without fields, by its redacted ``str``: a copy cannot vouch
    for state it cannot see. Numbers, dates, UUIDs and enums stay as they are. Cycles stay cycles.

    Example::

        tally = Tally()
        redact_value({"out": "key=s3cr3t-value-123"}, Redactor(["s3cr3t-value-123"]), tally)
        # {"out": "key=[redacted]"}, tally.count == 1
    """
    return _walk(value, r, tally, {}, 0)


def _walk(v: Any, r: Redactor, tally: Tally, seen: dict[int, Any], depth: int) -> Any:
    if isinstance(v, str):
        return _text(v, r, tally)
    if isinstance(v, _SAFE_SCALARS):
        return v
    if isinstance(v, bytes | bytearray | memoryview):
        out, n = r.bytes(bytes(v))
        tally.count += n
        return bytearray(out) if isinstance(v, bytearray) else out
    if id(v) in seen:
        return seen[id(v)]
    if depth >= MAX_DEPTH:
        tally.count += 1
        return TOO_DEEP
    d = depth + 1
    if isinstance(v, dict):
        out_d: dict[Any, Any] = {}
        seen[id(v)] = out_d
        for k, item in v.items():
            out_d[_walk(k, r, tally, seen, d)] = _walk(item, r, tally, seen, d)
        return out_d
    if isinstance(v, list):
        out_l: list[Any] = []
        seen[id(v)] = out_l
        out_l.extend(_walk(item, r, tally, seen, d) for item in v)
        return out_l
    if isinstance(v, tuple):
        items = [_walk(item, r, tally, seen, d) for item in v]
        return type(v)(*items) if hasattr(v, "_fields") else tuple(items)
    if isinstance(v, set | frozenset):
        return type(v)(_walk(item, r, tally, seen, d) for item in v)
    if isinstance(v, BaseException):
        return _text(describe_exception(v), r, tally)
    return _walk(_fields_of(v), r, tally, seen, depth)


def _fields_of(v: Any) -> Any:
    try:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}
        dump = getattr(v, "model_dump", None)
        if callable(dump):
            return dump()
        if hasattr(v, "__dict__") and not isinstance(v, type):
            return {k: x for k, x in vars(v).items() if not k.startswith("_")}
        return str(v)
    except Exception:
        return f"<{type(v).__name__}>"


def _text(s: str, r: Redactor, tally: Tally) -> str:
    out, n = r.text(s)
    tally.count += n
    return out


def describe_exception(err: BaseException) -> str:
    """``"TypeName: message"`` of an exception (not yet redacted), never failing."""
    try:
        message = str(err)
    except Exception:
        message = "<unprintable>"
    name = type(err).__name__
    return f"{name}: {message}" if message else name
