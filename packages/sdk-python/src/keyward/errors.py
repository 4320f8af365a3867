"""Errors the SDK raises.

Every one is a :class:`KeywardError` with a stable ``code``: the server's own code (SPEC §4 body,
e.g. ``invalid_key``) for HTTP errors, or one of the SDK's codes below — the same values as the
Node SDK's. Messages never contain a secret value, key or token.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

SdkErrorCode = Literal[
    "server_unreachable",
    "invalid_response",
    "unknown_credential",
    "stale_credentials",
    "credential_expired",
    "event_stream_failed",
    "closed",
    "missing_user_token",
    "tool_timeout",
    "audit_failed",
    "audit_dropped",
    "response_too_large",
]


class KeywardError(Exception):
    """A failure with a stable ``code``; ``status`` is the HTTP status when the server answered.

    Example::

        try:
            kw = Keyward.connect(url=url, token=token)
        except KeywardError as err:
            if err.code == "key_revoked":
                raise SystemExit(1) from err
            raise
    """

    code: str
    status: int | None
    request_id: str | None

    def __init__(
        self, code: str, message: str, *, status: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.request_id = request_id

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class UnknownCredentialError(KeywardError, KeyError):
    """Raised by ``get``/``resolve`` for a name this agent cannot read: not granted in ``read`` mode,
    deleted, or never existed (the three are indistinguishable on purpose).

    It is also a ``KeyError``, so ``kw.get`` reads like a mapping lookup.
    """

    credential: str

    def __init__(self, name: str) -> None:
        KeywardError.__init__(
            self, "unknown_credential", f'credential "{_printable(name)}" is not readable by this agent'
        )
        self.credential = name

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.message


class StaleCredentialError(KeywardError):
    """Raised by ``get``/``resolve`` when the last successful contact with Keyward is older than
    ``max_stale``: the values held may have been rotated or revoked since."""

    last_contact: float
    max_stale: float

    def __init__(self, last_contact: float, max_stale: float) -> None:
        when = datetime.fromtimestamp(last_contact, tz=timezone.utc).isoformat(timespec="seconds")
        super().__init__(
            "stale_credentials",
            f"no contact with Keyward since {when} (longer than max_stale = {max_stale:g} s)",
        )
        self.last_contact = last_contact
        self.max_stale = max_stale


class CredentialExpiredError(KeywardError):
    """A token provider's current token is past its ``expires_at`` and Keyward has not sent a new one."""

    credential: str

    def __init__(self, name: str) -> None:
        super().__init__("credential_expired", f'the token of credential "{_printable(name)}" has expired')
        self.credential = name


class ResponseTooLargeError(KeywardError):
    """An answer (a body, an event-stream line or event) was bigger than its limit; the SDK stopped
    reading at the limit and closed the connection, so the size never cost memory."""

    limit: str
    max_size: int

    def __init__(self, what: str, limit: str, max_size: int, *, status: int | None = None) -> None:
        super().__init__(
            "response_too_large",
            f"{what} is too large (over {max_size}, limit {limit}); it was not read",
            status=status,
        )
        self.limit = limit
        self.max_size = max_size


def _printable(name: str, limit: int = 80) -> str:
    """A name as it may appear in a message: cut to ``limit`` characters, control characters escaped
    (a name comes from the caller or the server, never a secret, but it must not forge log lines)."""
    cut = name[:limit] + ("…" if len(name) > limit else "")
    return cut.encode("unicode_escape").decode("ascii") if not cut.isprintable() else cut
