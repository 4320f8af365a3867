"""Delegation between agents (SPEC §5): RFC 8693 token exchange, and an httpx auth hook that makes
each call to a downstream agent act for the current caller.

Agent W holds a token for its caller C (``aud`` = W, typically the JWT the gateway forwarded) and
wants to call agent D for C: it exchanges that token, with its own key as the actor token, for one
with ``aud`` = D, ``sub`` = C and ``act: {sub: "agent:W"}``. Keyward grants it only if W may call D,
D is in C's ``agent:`` scopes and the scope asked for is a subset of the subject token's.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from typing import Any

import httpx

from ._tool_context import acting_for, current_caller_token
from ._types import AsyncRequester, Requester
from .errors import KeywardError

__all__ = ["DelegatedAuth", "ExchangeError", "acting_for", "aexchange", "exchange"]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a URN, not a secret)
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
#: An OAuth error body is small; anything longer is cut before it reaches a message.
MAX_DESCRIPTION_CHARS = 500


class ExchangeError(KeywardError):
    """The token endpoint refused the exchange. ``code`` (also ``error``) is the RFC 6749 / 8693
    code: ``invalid_target`` (this agent may not call that audience), ``invalid_scope`` (scope
    escalation), ``invalid_grant`` (a bad subject token), ``invalid_client`` (a bad actor key), or
    ``invalid_response`` when the answer was not an OAuth response. Never holds either token.

    Example::

        try:
            token = kw.exchange(caller_jwt, "billing")
        except ExchangeError as err:
            if err.code == "invalid_target":
                return "not allowed to call billing"
            raise
    """

    error: str
    error_description: str | None

    def __init__(
        self, error: str, description: str | None, *, status: int | None = None, request_id: str | None = None
    ) -> None:
        message = f"token exchange failed: {error}" + (f": {description}" if description else "")
        super().__init__(error, message, status=status, request_id=request_id)
        self.error = error
        self.error_description = description


class Exchanged:
    """A delegated token and its lifetime in seconds (the token stays out of repr)."""

    __slots__ = ("access_token", "expires_in", "scope")

    def __init__(self, access_token: str, expires_in: float, scope: str) -> None:
        self.access_token = access_token
        self.expires_in = expires_in
        self.scope = scope

    def __repr__(self) -> str:
        return f"Exchanged(expires_in={self.expires_in}, scope={self.scope!r})"


def _scope(scope: str | Sequence[str] | None) -> str | None:
    if scope is None or isinstance(scope, str):
        return scope
    return " ".join(scope)


def _form(subject_token: str, actor_token: str, audience: str, scope: str | None) -> dict[str, str]:
    for what, value in (
        ("subject_token", subject_token),
        ("audience", audience),
        ("actor_token", actor_token),
    ):
        if not isinstance(value, str) or not value:
            raise ValueError(f"exchange: {what} must be a non-empty string")
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "actor_token": actor_token,
        "actor_token_type": ACCESS_TOKEN_TYPE,
        "audience": audience,
    }
    if scope is not None:
        form["scope"] = scope
    return form


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """The server never echoes a token, but a message is where one would leak: make sure."""
    for secret in secrets:
        if len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    return text[:MAX_DESCRIPTION_CHARS]


def _refused(err: KeywardError, secrets: Sequence[str]) -> KeywardError:
    if err.status is None:  # no answer: server_unreachable and the like stay as they are
        return err
    if err.code.startswith("http_"):
        return ExchangeError(
            "invalid_response", f"the token endpoint answered HTTP {err.status}", status=err.status
        )
    prefix = "token exchange failed: "
    message = err.message.removeprefix(prefix)
    description = None if message == f"Keyward answered HTTP {err.status}" else _scrub(message, secrets)
    return ExchangeError(_scrub(err.code, secrets), description, status=err.status, request_id=err.request_id)


def _result(body: dict[str, Any], scope: str | None) -> Exchanged:
    token, expires_in = body.get("access_token"), body.get("expires_in")
    if not isinstance(token, str) or not token or isinstance(expires_in, bool):
        raise ExchangeError(
            "invalid_response", "the token endpoint's answer has no access_token or expires_in"
        )
    if not isinstance(expires_in, int | float):
        raise ExchangeError(
            "invalid_response", "the token endpoint's answer has no access_token or expires_in"
        )
    granted = body.get("scope")
    return Exchanged(token, float(expires_in), granted if isinstance(granted, str) else (scope or ""))


def exchange_full(
    requester: Requester, subject_token: str, audience: str, scope: str | Sequence[str] | None = None
) -> Exchanged:
    """:func:`exchange`, answering the token with its lifetime and granted scope.

    Example::

        got = exchange_full(kw, caller_jwt, "research")
        cache_for = got.expires_in
    """
    actor = requester.agent_token()
    form = _form(subject_token, actor, audience, _scope(scope))
    try:
        body = requester.request_json("POST", "/oauth/token", form=form, auth_header="")
    except KeywardError as err:
        raise _refused(err, (subject_token, actor)) from None
    return _result(body, _scope(scope))


async def aexchange_full(
    requester: AsyncRequester, subject_token: str, audience: str, scope: str | Sequence[str] | None = None
) -> Exchanged:
    """:func:`exchange_full` for asyncio.

    Example::

        got = await aexchange_full(akw, caller_jwt, "research")
    """
    actor = await requester.agent_token()
    form = _form(subject_token, actor, audience, _scope(scope))
    try:
        body = await requester.request_json("POST", "/oauth/token", form=form, auth_header="")
    except KeywardError as err:
        raise _refused(err, (subject_token, actor)) from None
    return _result(body, _scope(scope))


def exchange(
    requester: Requester, subject_token: str, audience: str, scope: str | Sequence[str] | None = None
) -> str:
    """A delegated access token for agent ``audience``, acting for the caller of ``subject_token``
    (RFC 8693 at ``POST /oauth/token``, this agent's own key or token as ``actor_token``).

    The result has ``aud`` = ``audience``, the subject's ``sub``, an ``act`` claim naming this agent,
    at most ``scope`` (a space-separated string or a list), and expires no later than the subject
    token. Refusals raise :class:`ExchangeError` with the OAuth code.

    Example::

        token = exchange(kw, subject_token=caller_jwt, audience="research", scope="agent:research read:docs")
        httpx.post(f"{url}/agents/research/run", headers={"Authorization": f"Bearer {token}"})
    """
    return exchange_full(requester, subject_token, audience, scope).access_token


async def aexchange(
    requester: AsyncRequester, subject_token: str, audience: str, scope: str | Sequence[str] | None = None
) -> str:
    """:func:`exchange` for asyncio.

    Example::

        token = await aexchange(akw, subject_token=caller_jwt, audience="research")
    """
    return (await aexchange_full(requester, subject_token, audience, scope)).access_token


#: A cached delegated token is renewed this long before it expires (or at a third of its lifetime).
RENEW_MARGIN = 30.0
#: Delegated tokens held at most (one per caller, audience and scope); the oldest goes first.
MAX_CACHED = 1000


def _is_async(requester: object) -> bool:
    return inspect.iscoroutinefunction(getattr(requester, "request_json", None))


class DelegatedAuth(httpx.Auth):
    """httpx auth for calls to agent ``audience`` through the gateway, each acting for the current
    caller: the caller's token (by default the one set by :func:`acting_for`, or what
    ``subject_token()`` answers) is exchanged for one with ``aud`` = ``audience``, cached until
    shortly before it expires, and sent as ``Authorization: Bearer …``.

    Works with ``httpx.Client`` (given a sync requester such as ``Keyward``) and
    ``httpx.AsyncClient`` (either kind). Calls outside any caller raise ``missing_user_token``.

    Example (FastAPI; the same with LangServe's ``RemoteRunnable(url, headers=…)`` clients)::

        research = httpx.AsyncClient(base_url=f"{keyward_url}/agents/research",
                                     auth=DelegatedAuth(akw, "research"))

        async def act_for_caller(request: Request) -> AsyncIterator[None]:
            with acting_for(request.headers["authorization"].removeprefix("Bearer ")):
                yield

        @app.post("/ask", dependencies=[Depends(act_for_caller)])
        async def ask() -> dict[str, Any]:
            return (await research.post("/run", json={"q": "…"})).json()
    """

    def __init__(
        self,
        requester: Requester | AsyncRequester,
        audience: str,
        *,
        subject_token: Callable[[], str | None] | None = None,
        scope: str | Sequence[str] | None = None,
        max_cached: int = MAX_CACHED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(audience, str) or not audience:
            raise ValueError("DelegatedAuth: audience must be a non-empty string")
        if max_cached < 1:
            raise ValueError("DelegatedAuth: max_cached must be at least 1")
        self._requester = requester
        self._async = _is_async(requester)
        self._audience = audience
        self._subject = subject_token or current_caller_token
        self._scope = _scope(scope)
        self._max = max_cached
        self._clock = clock
        self._cache: OrderedDict[tuple[bytes, str | None], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DelegatedAuth(audience={self._audience!r}, cached={len(self._cache)})"

    def _key(self) -> tuple[tuple[bytes, str | None], str]:
        subject = self._subject()
        if not subject:
            raise KeywardError(
                "missing_user_token",
                f"a call to agent {self._audience!r} has no caller to act for: "
                "wrap it in keyward.delegation.acting_for(token) or pass subject_token=",
            )
        return (hashlib.sha256(subject.encode()).digest(), self._scope), subject

    def _cached(self, key: tuple[bytes, str | None]) -> str | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is None or hit[1] <= self._clock():
                return None
            self._cache.move_to_end(key)
            return hit[0]

    def _store(self, key: tuple[bytes, str | None], got: Exchanged) -> str:
        renew_at = self._clock() + got.expires_in - min(RENEW_MARGIN, got.expires_in / 3)
        with self._lock:
            self._cache[key] = (got.access_token, renew_at)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return got.access_token

    def token(self) -> str:
        """The delegated token for the current caller (exchanged, or from the cache).

        Example::

            headers = {"Authorization": f"Bearer {auth.token()}"}
        """
        if self._async:
            raise TypeError("DelegatedAuth: an asyncio requester needs httpx.AsyncClient (or use atoken)")
        key, subject = self._key()
        hit = self._cached(key)
        if hit is not None:
            return hit
        got = exchange_full(self._requester, subject, self._audience, self._scope)  # type: ignore[arg-type]
        return self._store(key, got)

    async def atoken(self) -> str:
        """:meth:`token` for asyncio (a sync requester's exchange runs in a worker thread).

        Example::

            headers = {"Authorization": f"Bearer {await auth.atoken()}"}
        """
        key, subject = self._key()
        hit = self._cached(key)
        if hit is not None:
            return hit
        if self._async:
            got = await aexchange_full(self._requester, subject, self._audience, self._scope)  # type: ignore[arg-type]
        else:
            got = await asyncio.to_thread(
                exchange_full,
                self._requester,  # type: ignore[arg-type]
                subject,
                self._audience,
                self._scope,
            )
        return self._store(key, got)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.atoken()}"
        yield request
