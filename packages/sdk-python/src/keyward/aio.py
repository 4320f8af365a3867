"""The asyncio client: ``AsyncKeyward.connect`` and two tasks that keep the values fresh.

The rules live in ``_loop_core.py``; this module only does the I/O (httpx, asyncio) and the waiting.
Everything runs on the loop that connected, so the core needs no lock; readers never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

import httpx

from ._base import ClientBase, helper_module
from ._credential_set import Page
from ._drive import ApiCall, stream_answer, stream_failure, stream_timeout
from ._http import ahttp_error, aread_bounded, parse_json_object, unreachable
from ._limits import Limits
from ._loop_core import (
    Fetch,
    LoopCore,
    StreamEnd,
    StreamSession,
    closed_error,
    credentials_limit,
    parse_credentials,
)
from ._options import Clock, Options, resolve_options
from .errors import KeywardError

AsyncToken = str | Callable[[], str] | Callable[[], Awaitable[str]]


class AsyncKeyward(ClientBase):
    """:class:`keyward.Keyward` for asyncio: the same ``get``/``resolve``/``on_change`` (from memory,
    never awaiting), with ``refresh``, ``request_json``, ``exchange`` and ``close`` awaited.

    Example::

        from keyward import AsyncKeyward

        async with AsyncKeyward.connect(url="http://127.0.0.1:8080", token=os.environ["KW_KEY"]) as kw:
            client = AsyncOpenAI(api_key=kw.get("openai"))
    """

    def __init__(self, opts: Options, transport: httpx.AsyncBaseTransport | None) -> None:
        super().__init__(opts)
        self._http = httpx.AsyncClient(
            transport=transport, timeout=opts.request_timeout, follow_redirects=False
        )
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @classmethod
    def connect(
        cls,
        url: str,
        token: AsyncToken,
        *,
        max_stale: float = 86_400.0,
        limits: Limits | None = None,
        poll_interval: float = 15.0,
        heartbeat_timeout: float = 45.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        request_timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        _clock: Clock | None = None,
        _random: Callable[[], float] | None = None,
    ) -> _Connecting:
        """Awaitable (``kw = await AsyncKeyward.connect(...)``) and an async context manager
        (``async with AsyncKeyward.connect(...) as kw:``). Options and errors as
        :meth:`keyward.Keyward.connect`; ``token`` may also be an async callable.

        Example::

            kw = await AsyncKeyward.connect(url=url, token=agent_key, max_stale=3600)
            try:
                ...
            finally:
                await kw.close()
        """
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise TypeError("AsyncKeyward.connect: transport must be an httpx.AsyncBaseTransport")
        opts = resolve_options(
            url=url, token=token, max_stale=max_stale, limits=limits, poll_interval=poll_interval,
            heartbeat_timeout=heartbeat_timeout, backoff_base=backoff_base, backoff_cap=backoff_cap,
            request_timeout=request_timeout, clock=_clock, random=_random,
        )  # fmt: skip
        return _Connecting(cls, opts, transport)

    async def _start(self) -> None:
        try:
            page = await self._fetch_page(None, None)
            assert page is not None  # no ETag sent: never a 304
            clock = self._opts.clock
            self._core.load(page, clock.monotonic(), clock.time())
        except BaseException:
            await self.close()
            raise
        self._tasks = [
            asyncio.create_task(self._stream_worker(), name="keyward-stream"),
            asyncio.create_task(self._fetch_worker(), name="keyward-fetch"),
        ]

    # -- AsyncCredentialSource ------------------------------------------------------------------

    async def refresh(self) -> None:
        """Fetches what changed since the last cursor and waits for it. Raises the fetch's
        KeywardError if it failed, KeywardError ``closed`` after close.

        Example::

            await kw.refresh()
            token = kw.get("azure_openai")
        """
        if self._core.closed:
            raise closed_error()
        ticket = self._core.request_fetch()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((ticket, future))
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(future), 2 * self._opts.request_timeout + 5)
        except asyncio.TimeoutError:
            raise KeywardError("server_unreachable", "Keyward did not answer the refresh in time") from None

    # -- AsyncRequester -------------------------------------------------------------------------

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        auth_header: str | None = None,
        max_bytes: int | None = None,
    ) -> dict[str, Any]:
        """:meth:`keyward.Keyward.request_json`, awaited.

        Example::

            body = {"user_token": jwt, "names": ["gh"]}
            out = await kw.request_json("POST", "/v1/tools/credentials", json=body)
        """
        if self._core.closed:
            raise closed_error()
        call = ApiCall(self._opts, method, path, auth_header, max_bytes)
        if call.needs_token:
            call.authorize(await self.agent_token())
        try:
            async with self._http.stream(method, call.url, headers=call.headers, json=json, data=form) as res:
                if not res.is_success:
                    raise await ahttp_error(res, self._opts.limits.response_bytes, self._opts.request_timeout)
                body = await aread_bounded(res, call.limit, self._opts.request_timeout)
        except httpx.TransportError as err:
            raise unreachable(self._opts.url, err) from None
        return parse_json_object(body, call.what)

    async def agent_token(self) -> str:
        """The agent's own key or token, as given to ``connect`` (a callable is called, and awaited
        if it is async).

        Example::

            headers = {"authorization": f"Bearer {await kw.agent_token()}"}
        """
        token: object = self._opts.token()
        if inspect.isawaitable(token):
            token = await token
        if not isinstance(token, str) or not token:
            raise TypeError("AsyncKeyward: the token callable must return a non-empty str")
        return token

    # -- helpers of other modules (thin) --------------------------------------------------------

    def token_provider(self, name: str) -> Callable[[], Awaitable[str]]:
        """An async zero-argument callable answering the current access token of an
        ``oauth2_client_credentials`` credential (see ``keyward.tokens``).

        Example::

            client = AsyncAzureOpenAI(azure_endpoint=endpoint, api_version=version,
                                      azure_ad_token_provider=kw.token_provider("azure_openai"))
        """
        provider = helper_module("tokens").async_token_provider(self, name)
        return cast("Callable[[], Awaitable[str]]", provider)

    def token_credential(self, name: str) -> Any:
        """An async Azure-style credential (``await get_token(*scopes)``); see ``keyward.tokens``.

        Example::

            token = await kw.token_credential("azure_openai").get_token()
        """
        return helper_module("tokens").async_token_credential(self, name)

    async def exchange(
        self, subject_token: str, audience: str, scope: str | Sequence[str] | None = None
    ) -> str:
        """A delegated access token for agent ``audience`` (RFC 8693); see ``keyward.delegation``.

        Example::

            token = await kw.exchange(caller_jwt, "billing", scope="read:invoices")
        """
        return cast(str, await helper_module("delegation").aexchange(self, subject_token, audience, scope))

    def with_user_credentials(self, tool: Any, *, names: Any, inject: str = "params", name: str | None = None,
                              **kwargs: Any) -> Any:  # fmt: skip
        """Wraps an async ``tool`` so each call gets the calling user's own credentials (SPEC §7); see
        ``keyward.tools``.

        Example::

            search = kw.with_user_credentials(search_impl, names=["github_token"], inject="params")
        """
        tools = helper_module("tools")
        wrap = getattr(tools, "awith_user_credentials", None) or tools.with_user_credentials
        return wrap(self, tool, names=names, inject=inject, name=name, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stops the background tasks and the event stream, closes the connections and drops the
        values from memory; ``get`` then raises KeywardError ``closed``. Safe to call twice.

        Example::

            await kw.close()
        """
        if self._core.closed:
            return
        # Tool-call audit records still queued are delivered first (bounded by the request time).
        from ._tool_audit import AsyncAuditQueue, existing_audit_queue

        queue = existing_audit_queue(self)
        if isinstance(queue, AsyncAuditQueue):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(queue.aclose(), self._opts.request_timeout)
        if self._core.closed:
            return
        self._core.close()
        self._closing.set()
        self._wake.set()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(closed_error())
        self._waiters.clear()
        await self._http.aclose()
        self._clear_listeners()

    async def __aenter__(self) -> AsyncKeyward:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- I/O ------------------------------------------------------------------------------------

    async def _fetch_page(self, since: str | None, etag: str | None) -> Page | None:
        url, headers = self._core.credentials_request(since, etag)
        headers["authorization"] = f"Bearer {await self.agent_token()}"
        try:
            async with self._http.stream("GET", url, headers=headers) as res:
                if res.status_code == 304:
                    return None
                if not res.is_success:
                    raise await ahttp_error(res, self._opts.limits.response_bytes, self._opts.request_timeout)
                body = await aread_bounded(res, credentials_limit(self._opts), self._opts.request_timeout)
                etag_header = res.headers.get("etag")
        except httpx.TransportError as err:
            raise unreachable(self._opts.url, err) from None
        return parse_credentials(body, etag_header)

    async def _fetch(self, fetch: Fetch) -> tuple[Page | None, bool]:
        try:
            return await self._fetch_page(fetch.since, fetch.etag), fetch.since is None
        except KeywardError as err:
            if not LoopCore.cursor_rejected(fetch, err):
                raise
            return await self._fetch_page(None, None), True

    async def _fetch_worker(self) -> None:
        core, clock = self._core, self._opts.clock
        while not core.closed:
            self._wake.clear()  # before looking: a request made from now on wakes the wait below
            mono = clock.monotonic()
            stale = core.stale_error(mono)
            if stale is not None:
                self._report_error(stale)
            if not core.fetch_due(mono):
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, core.next_wake(mono) - mono))
                continue
            fetch = core.begin_fetch()
            try:
                outcome: tuple[Page | None, bool] | Exception = await self._fetch(fetch)
            except Exception as exc:
                outcome = exc
            changes, errors = core.fetch_settled(fetch, outcome, clock.monotonic(), clock.time())
            self._answer_waiters()
            self._report(changes, errors)

    def _answer_waiters(self) -> None:
        core = self._core
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for ticket, future in self._waiters:
            if ticket > core.answered:
                keep.append((ticket, future))
            elif not future.done():
                if core.answer_error is None:
                    future.set_result(None)
                else:
                    future.set_exception(core.answer_error)
        self._waiters = keep

    async def _stream_worker(self) -> None:
        core, clock = self._core, self._opts.clock
        while not core.closed:
            kind, got_data, err = await self._run_stream()
            if core.closed:
                return
            delay = core.stream_ended(kind, got_data, err, clock.monotonic())
            self._wake.set()  # polling takes over
            if err is not None:
                self._report_error(err)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)

    async def _run_stream(self) -> tuple[StreamEnd, bool, KeywardError | None]:
        """:meth:`keyward.Keyward._run_stream` for asyncio."""
        core, opts, clock = self._core, self._opts, self._opts.clock
        url, headers = core.events_request()
        session = StreamSession(core)
        try:
            headers["authorization"] = f"Bearer {await self.agent_token()}"
            async with self._http.stream("GET", url, headers=headers, timeout=stream_timeout(opts)) as res:
                answer = stream_answer(res)
                if answer == "refused":
                    error = await ahttp_error(res, opts.limits.response_bytes, opts.request_timeout)
                    return "failed", False, error
                if answer is not None:
                    return answer[0], False, answer[1]
                core.stream_opened(clock.monotonic(), clock.time())
                self._wake.set()
                async for raw in res.aiter_raw():
                    changes, woke = session.feed(raw, clock.monotonic(), clock.time())
                    if woke:
                        self._wake.set()
                    self._report_changes(changes)
                return "ended", session.got_data, None
        except Exception as exc:
            return "failed", session.got_data, stream_failure(exc, opts)
        finally:
            session.finish()


class _Connecting:
    """What ``AsyncKeyward.connect`` returns: await it, or enter it with ``async with``."""

    def __init__(
        self, cls: type[AsyncKeyward], opts: Options, transport: httpx.AsyncBaseTransport | None
    ) -> None:
        self._cls, self._opts, self._transport = cls, opts, transport
        self._client: AsyncKeyward | None = None

    async def _connect(self) -> AsyncKeyward:
        kw = self._cls(self._opts, self._transport)
        await kw._start()
        self._client = kw
        return kw

    def __await__(self) -> Generator[Any, None, AsyncKeyward]:
        return self._connect().__await__()

    async def __aenter__(self) -> AsyncKeyward:
        return await self._connect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.close()
