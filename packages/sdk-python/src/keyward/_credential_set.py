"""The values held in memory and the position in the server's change feed (cursor, ETag), sans I/O.

Readers never lock: every change builds a new dict and swaps it in with one assignment, so a reader
sees the whole old set or the whole new one. ``parse_page`` checks the §6 shape field by field: a
server that answers something else must not poison what is held.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ._types import Credential
from .errors import KeywardError, _printable

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


@dataclass(frozen=True, slots=True)
class Change:
    """A credential got a new value (``version`` set) or was removed (``version`` None)."""

    name: str
    version: int | None


@dataclass(frozen=True)
class Unavailable:
    name: str
    code: str
    message: str


@dataclass(frozen=True)
class Page:
    """``GET /v1/credentials`` answered 200: the whole set without ``since``, a delta with it."""

    credentials: dict[str, Credential]
    removed: list[str]
    cursor: str
    etag: str | None
    unavailable: list[Unavailable] = field(default_factory=list)


def _invalid(why: str) -> KeywardError:
    return KeywardError("invalid_response", f"unexpected answer from GET /v1/credentials: {why}")


def parse_rfc3339(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 date-time, or None when it is not one."""
    m = _RFC3339.fullmatch(text) if len(text) <= 40 else None
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = m.groups()
    try:
        offset = timedelta(0) if zulu else timedelta(hours=int(off_h), minutes=int(off_m))
        when = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            min(int(second), 59),
            tzinfo=timezone(offset if sign != "-" else -offset),
        )
    except ValueError:
        return None
    return when.timestamp() + (float(f"0.{frac}") if frac else 0.0)


def parse_page(body: dict[str, Any], etag: str | None) -> Page:
    """The §6 body as a :class:`Page`; KeywardError ``invalid_response`` for anything else."""
    raw_creds = body.get("credentials")
    if not isinstance(raw_creds, dict):
        raise _invalid("no credentials object")
    credentials: dict[str, Credential] = {}
    for name, raw in raw_creds.items():
        if not isinstance(raw, dict):
            raise _invalid(f'credential "{_printable(name)}" is not an object')
        value, version = raw.get("value"), raw.get("version")
        if not isinstance(value, str) or isinstance(version, bool) or not isinstance(version, int):
            raise _invalid(f'credential "{_printable(name)}" has no string value or integer version')
        expires_at = raw.get("expires_at")
        at: float | None = None
        if expires_at is not None:
            at = parse_rfc3339(expires_at) if isinstance(expires_at, str) else None
            if at is None:
                raise _invalid(f'credential "{_printable(name)}" has an unreadable expires_at')
        credentials[name] = Credential(name=name, value=value, version=version, expires_at=at)
    removed = body.get("removed", [])
    if not isinstance(removed, list) or not all(isinstance(n, str) for n in removed):
        raise _invalid("removed is not a list of names")
    cursor = body.get("cursor")
    if isinstance(cursor, bool) or not isinstance(cursor, (str, int)):
        raise _invalid("no cursor")
    unavailable: list[Unavailable] = []
    raw_unavailable = body.get("unavailable")
    if isinstance(raw_unavailable, dict):
        for name, why in raw_unavailable.items():
            code = why.get("code") if isinstance(why, dict) else None
            message = why.get("message") if isinstance(why, dict) else None
            unavailable.append(
                Unavailable(
                    name,
                    code[:100] if isinstance(code, str) else "credential_unavailable",
                    message[:1000] if isinstance(message, str) else f"{_printable(name)} is unavailable",
                )
            )
    return Page(credentials, removed, str(cursor), etag, unavailable)


class CredentialSet:
    """All changes go through here, so a change is reported exactly when a value differs, and only
    after the whole page is applied (a listener sees a consistent set)."""

    def __init__(self) -> None:
        #: Replaced, never mutated: the lock-free readers' snapshot.
        self.entries: dict[str, Credential] = {}
        self.cursor: str | None = None
        self.etag: str | None = None

    def load(self, page: Page) -> None:
        """The first set: nothing is reported, nobody is listening yet."""
        self.entries = dict(page.credentials)
        self.cursor = page.cursor
        self.etag = page.etag

    def apply(self, page: Page, full: bool) -> list[Change]:
        """Applies a page; ``full`` replaces the whole set (names missing from it are removed)."""
        old = self.entries
        new = page.credentials
        gone = dict.fromkeys(n for n in old if n not in new) if full else {}
        gone.update(dict.fromkeys(n for n in page.removed if n in old and n not in new))
        changed = [c for n, c in new.items() if old.get(n) != c]
        self.cursor = page.cursor
        self.etag = page.etag
        if gone or changed:
            entries = dict(old)
            for name in gone:
                del entries[name]
            for c in changed:
                entries[c.name] = c
            self.entries = entries
        return [Change(n, None) for n in gone] + [Change(c.name, c.version) for c in changed]

    def remove(self, name: str) -> Change | None:
        if name not in self.entries:
            return None
        entries = dict(self.entries)
        del entries[name]
        self.entries = entries
        return Change(name, None)

    def clear(self) -> None:
        self.entries = {}
        self.cursor = None
        self.etag = None
