"""What the pieces of the SDK need from one another: the client hands the token helpers, the
delegation helpers and the tool wrappers these protocols, never itself, so each can be tested with a
small fake and none imports the client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Credential:
    """One held credential. ``expires_at`` (epoch seconds) is set for a token provider's token."""

    name: str
    value: str
    version: int
    expires_at: float | None = None

    def __repr__(self) -> str:  # never the value: a repr ends up in logs and tracebacks
        return f"Credential(name={self.name!r}, version={self.version}, expires_at={self.expires_at})"


class CredentialSource(Protocol):
    """The held credentials of a connected client."""

    def credential(self, name: str) -> Credential:
        """The held entry from memory; raises UnknownCredentialError / StaleCredentialError like ``get``."""
        ...

    def refresh(self) -> None:
        """Fetch what changed since the last cursor (blocking, bounded by the request timeout)."""
        ...

    def now(self) -> float:
        """Epoch seconds (a test passes a manual clock)."""
        ...


class AsyncCredentialSource(Protocol):
    """:class:`CredentialSource` of an asyncio client (``refresh`` is awaited)."""

    def credential(self, name: str) -> Credential: ...

    async def refresh(self) -> None: ...

    def now(self) -> float: ...


class Requester(Protocol):
    """Authenticated calls to Keyward as the agent (its key or token in ``Authorization``)."""

    def request_json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        auth_header: str | None = None,
        max_bytes: int | None = None,
    ) -> dict[str, Any]:
        """The JSON object of a 2xx answer (body within ``max_bytes``, default ``limits.response_bytes``).

        ``auth_header`` replaces the agent's own ``Authorization`` (``""`` sends none). A non-2xx
        answer raises KeywardError with the server's code; no answer raises ``server_unreachable``."""
        ...

    def agent_token(self) -> str:
        """The agent's own key or token, as given to ``connect``."""
        ...


class AsyncRequester(Protocol):
    """:class:`Requester` for asyncio."""

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        auth_header: str | None = None,
        max_bytes: int | None = None,
    ) -> dict[str, Any]: ...

    async def agent_token(self) -> str: ...
