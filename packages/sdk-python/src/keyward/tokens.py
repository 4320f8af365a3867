"""Token providers for clients that take a token callback or an Azure-style credential.

An ``oauth2_client_credentials`` credential's value is an access token Keyward fetched and keeps
refreshing ahead of expiry (SPEC §6); the event stream brings each new one. These helpers cover a
missed event or a sleeping host: near expiry (30 s) they ask the server first (at most once a
second), and they never hand out an expired token (:class:`~keyward.CredentialExpiredError`). A
value without ``expires_at`` (a static key) is reported as valid for 5 minutes, so callers ask again.

The same logic as the Node SDK's ``createTokenGetter``. Most code reaches these through the client
(``kw.token_provider(name)``, ``kw.token_credential(name)``).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

from ._types import AsyncCredentialSource, Credential, CredentialSource
from .errors import CredentialExpiredError

#: A held token this close to its expiry (seconds) is refreshed before it is handed out.
MARGIN = 30.0
#: …but not more often than this while it is still valid (a busy client asks per request).
MIN_REFRESH_INTERVAL = 1.0
#: The lifetime reported for a value without ``expires_at`` (a static key): callers ask again soon.
STATIC_LIFETIME = 300

__all__ = [
    "AccessToken",
    "AccessTokenInfo",
    "AsyncTokenCredential",
    "TokenCredential",
    "async_token_credential",
    "async_token_provider",
    "token_credential",
    "token_provider",
]


class AccessToken(NamedTuple):
    """azure-core's ``AccessToken`` shape: the token and its expiry in epoch seconds.

    Example::

        token, expires_on = kw.token_credential("azure_openai").get_token("https://cognitiveservices.azure.com/.default")
    """

    token: str
    expires_on: int

    def __repr__(self) -> str:  # a repr ends up in logs and tracebacks: never the token
        return f"AccessToken(token='…', expires_on={self.expires_on})"


@dataclass(frozen=True, repr=False)
class AccessTokenInfo:
    """azure-core's ``AccessTokenInfo`` shape (``get_token_info`` of newer Azure SDKs).

    Example::

        info = kw.token_credential("azure_openai").get_token_info("https://cognitiveservices.azure.com/.default")
        headers = {"Authorization": f"{info.token_type} {info.token}"}
    """

    token: str
    expires_on: int
    token_type: str = "Bearer"  # noqa: S105
    refresh_on: int | None = None

    def __repr__(self) -> str:
        return f"AccessTokenInfo(token='…', expires_on={self.expires_on}, token_type={self.token_type!r})"


class _Schedule:
    """When to ask the server, shared by the sync and asyncio getters."""

    def __init__(self) -> None:
        self.last_refresh = float("-inf")
        self.lock = threading.Lock()

    def needs_refresh(self, entry: Credential, now: float) -> bool:
        """True when this caller should refresh now (and claims the refresh)."""
        if entry.expires_at is None or entry.expires_at - MARGIN > now:
            return False
        with self.lock:
            expired = entry.expires_at <= now
            if expired or now - self.last_refresh >= MIN_REFRESH_INTERVAL:
                self.last_refresh = now
                return True
            return False


def _checked(entry: Credential, now: float, name: str, failure: BaseException | None) -> Credential:
    if entry.expires_at is not None and entry.expires_at <= now:
        err = CredentialExpiredError(name)
        err.__cause__ = failure
        raise err
    return entry


def _token_getter(source: CredentialSource, name: str) -> Callable[[], Credential]:
    schedule = _Schedule()

    def current() -> Credential:
        entry = source.credential(name)
        if not schedule.needs_refresh(entry, source.now()):
            return entry
        failure: BaseException | None = None
        try:
            source.refresh()
        except Exception as err:  # the held token may still be good; judged below
            failure = err
        return _checked(source.credential(name), source.now(), name, failure)

    return current


def _async_token_getter(source: AsyncCredentialSource, name: str) -> Callable[[], Awaitable[Credential]]:
    schedule = _Schedule()

    async def current() -> Credential:
        entry = source.credential(name)
        if not schedule.needs_refresh(entry, source.now()):
            return entry
        failure: BaseException | None = None
        try:
            await source.refresh()
        except Exception as err:
            failure = err
        return _checked(source.credential(name), source.now(), name, failure)

    return current


def _access_token(entry: Credential, now: float) -> AccessToken:
    expires = entry.expires_at if entry.expires_at is not None else now + STATIC_LIFETIME
    return AccessToken(entry.value, int(expires))


def token_provider(source: CredentialSource, name: str) -> Callable[[], str]:
    """A zero-argument callable answering the current token of credential ``name``, for clients
    that take a token callback, such as ``openai.AzureOpenAI(azure_ad_token_provider=…)``.

    Raises :class:`~keyward.CredentialExpiredError` rather than answer an expired token, and
    ``UnknownCredentialError`` / ``StaleCredentialError`` as ``kw.get`` does.

    Example::

        from openai import AzureOpenAI
        client = AzureOpenAI(azure_endpoint=endpoint, api_version="2024-10-21",
                             azure_ad_token_provider=kw.token_provider("azure_openai"))
    """
    current = _token_getter(source, name)
    return lambda: current().value


def async_token_provider(source: AsyncCredentialSource, name: str) -> Callable[[], Awaitable[str]]:
    """:func:`token_provider` for asyncio clients, e.g. ``openai.AsyncAzureOpenAI``.

    Example::

        from openai import AsyncAzureOpenAI
        client = AsyncAzureOpenAI(azure_endpoint=endpoint, api_version="2024-10-21",
                                  azure_ad_token_provider=kw.token_provider("azure_openai"))
    """
    current = _async_token_getter(source, name)

    async def provide() -> str:
        return (await current()).value

    return provide


class TokenCredential:
    """An Azure-style credential (azure-core's ``TokenCredential`` protocol) over a credential's
    current value. The scopes are ignored: the credential's configuration in Keyward decides what
    its token is for. ``close`` and the context manager do nothing (the client owns the connection).

    Example::

        with kw.token_credential("azure_openai") as credential:
            token = credential.get_token("https://cognitiveservices.azure.com/.default").token
    """

    def __init__(self, source: CredentialSource, name: str) -> None:
        self._source = source
        self._current = _token_getter(source, name)
        self.name = name

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The current token and its expiry (epoch seconds).

        Example::

            token, expires_on = credential.get_token("https://cognitiveservices.azure.com/.default")
        """
        return _access_token(self._current(), self._source.now())

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """The current token as azure-core's ``AccessTokenInfo`` (``SupportsTokenInfo``).

        Example::

            info = credential.get_token_info("https://cognitiveservices.azure.com/.default")
        """
        token = self.get_token(*scopes)
        return AccessTokenInfo(token.token, token.expires_on)

    def close(self) -> None:
        """Nothing to release (azure-identity credentials have it; clients call it)."""

    def __enter__(self) -> TokenCredential:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TokenCredential(name={self.name!r})"


class AsyncTokenCredential:
    """:class:`TokenCredential` for asyncio (azure-core's ``AsyncTokenCredential``).

    Example::

        async with kw.token_credential("azure_openai") as credential:
            token = (await credential.get_token("https://cognitiveservices.azure.com/.default")).token
    """

    def __init__(self, source: AsyncCredentialSource, name: str) -> None:
        self._source = source
        self._current = _async_token_getter(source, name)
        self.name = name

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The current token and its expiry (epoch seconds).

        Example::

            token, expires_on = await credential.get_token("https://cognitiveservices.azure.com/.default")
        """
        return _access_token(await self._current(), self._source.now())

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """The current token as azure-core's ``AccessTokenInfo``.

        Example::

            info = await credential.get_token_info("https://cognitiveservices.azure.com/.default")
        """
        token = await self.get_token(*scopes)
        return AccessTokenInfo(token.token, token.expires_on)

    async def close(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> AsyncTokenCredential:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncTokenCredential(name={self.name!r})"


def token_credential(source: CredentialSource, name: str) -> TokenCredential:
    """An Azure-style :class:`TokenCredential` over credential ``name``.

    Example::

        credential = token_credential(kw, "azure_openai")  # usually kw.token_credential("azure_openai")
    """
    return TokenCredential(source, name)


def async_token_credential(source: AsyncCredentialSource, name: str) -> AsyncTokenCredential:
    """An Azure-style :class:`AsyncTokenCredential` over credential ``name``.

    Example::

        credential = async_token_credential(akw, "azure_openai")  # usually akw.token_credential(...)
    """
    return AsyncTokenCredential(source, name)
