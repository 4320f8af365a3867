"""The sync client: ``Keyward.connect`` and two daemon threads that keep the values fresh.

The rules live in ``_loop_core.py``; this module only does the I/O (httpx, sync) and the waiting
(one ``threading.Condition`` guards the core; readers never take it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

import httpx

from ._base import ClientBase, helper_module
from ._credential_set import Page
from ._drive import ApiCall, interrupt, stream_answer, stream_failure, stream_timeout
from ._http import http_error, parse_json_object, read_bounded, unreachable
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
from ._options import Clock, Options, current_token, resolve_options
from .errors import KeywardError

#: How long ``close`` waits for a background thread (a request in flight is bounded by request_timeout).
_JOIN_GRACE = 2.0


class Keyward(ClientBase):
    """A connected agent: every credential granted to it in ``read`` mode, held in memory and kept
    fresh by Keyward's event stream (polling as fallback). Create one with :meth:`connect` at start-up,
    read values with :meth:`get` wherever needed, and :meth:`close` it on shutdown (or use ``with``).

    Example::

        from keyward import Keyward

        with Keyward.connect(url="http://127.0.0.1:8080", token=os.environ["KEYWARD_AGENT_KEY"]) as kw:
            client = OpenAI(api_key=kw.get("openai"))
            kw.on_change(lambda name, version: print(f"{name} rotated to v{version}"))
    """

    def __init__(self, opts: Options, transport: httpx.BaseTransport | None) -> None:
        super().__init__(opts)
        self._http = httpx.Client(transport=transport, timeout=opts.request_timeout, follow_redirects=False)
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._stream_res: httpx.Response | None = None
        self._threads: list[threading.Thread] = []

    @classmethod
    def connect(
        cls,
        url: str,
        token: str | Callable[[], str],
        *,
        max_stale: float = 86_400.0,
        limits: Limits | None = None,
        poll_interval: float = 15.0,
        heartbeat_timeout: float = 45.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        request_timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        _clock: Clock | None = None,
        _random: Callable[[], float] | None = None,
    ) -> Keyward:
        """Loads every credential granted to the agent in one request (``GET /v1/credentials``), then
        keeps them fresh in the background. All durations are seconds.

        ``token`` is the agent's key (``kwk_…``) or an access token whose ``sub`` is the agent, or a
        zero-argument callable returning one (called before each request). ``max_stale`` (≥ 1 s,
        default 24 h): how long after the last successful contact the held values are still served
        while Keyward is unreachable. ``transport``: an httpx transport for every request (proxies,
        custom TLS, tests).

        Raises KeywardError with the server's code on a refused key or token (e.g. ``invalid_key``),
        ``server_unreachable`` when nothing answers, ``response_too_large`` / ``invalid_response``
        for an answer that is not Keyward's; TypeError/ValueError for a bad option.

        Example::

            kw = Keyward.connect(url="https://keyward.internal:8080", token=os.environ["KEYWARD_AGENT_KEY"],
                                 max_stale=3600)
        """
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise TypeError("Keyward.connect: transport must be an httpx.BaseTransport")
        opts = resolve_options(
            url=url, token=token, max_stale=max_stale, limits=limits, poll_interval=poll_interval,
            heartbeat_timeout=heartbeat_timeout, backoff_base=backoff_base, backoff_cap=backoff_cap,
            request_timeout=request_timeout, clock=_clock, random=_random,
        )  # fmt: skip
        kw = cls(opts, transport)
        try:
            page = kw._fetch_page(None, None)
            assert page is not None  # no ETag sent: never a 304
            clock = opts.clock
            kw._core.load(page, clock.monotonic(), clock.time())
        except BaseException:
            kw.close()
            raise
        for target, name in ((kw._stream_worker, "keyward-stream"), (kw._fetch_worker, "keyward-fetch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            kw._threads.append(thread)
            thread.start()
        return kw

    # -- CredentialSource -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Fetches what changed since the last cursor and waits for it (bounded by the request
        timeout). Raises the fetch's KeywardError if it failed, KeywardError ``closed`` after close.
        Not from an ``on_change`` callback (it runs on the thread that would do the fetch).

        Example::

            kw.refresh()
            token = kw.get("azure_openai")
        """
        if threading.current_thread() in self._threads:
            raise RuntimeError("Keyward.refresh cannot be called from an on_change or on_error callback")
        core = self._core
        with self._cond:
            if core.closed:
                raise closed_error()
            ticket = core.request_fetch()
            self._cond.notify_all()
            # One fetch, and its retry of a rejected cursor, each bounded by the request timeout.
            done = self._cond.wait_for(
                lambda: core.closed or core.answered >= ticket, 2 * self._opts.request_timeout + 5
            )
            if core.closed:
                raise closed_error()
            if not done:
                raise KeywardError("server_unreachable", "Keyward did not answer the refresh in time")
            if core.answer_error is not None:
                raise core.answer_error

    # -- Requester ------------------------------------------------------------------------------

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
        """An authenticated call to Keyward as this agent; the JSON object of its 2xx answer (within
        ``max_bytes``, default ``limits.response_bytes``). ``auth_header`` replaces the agent's own
        ``Authorization`` (``""`` sends none). Raises KeywardError with the server's code, or
        ``server_unreachable``.

        Example::

            out = kw.request_json("POST", "/v1/audit/events", json={"tool": "search", "user": "user:1",
                                                                   "outcome": "ok", "redactions": 0})
        """
        if self._core.closed:
            raise closed_error()
        call = ApiCall(self._opts, method, path, auth_header, max_bytes)
        if call.needs_token:
            call.authorize(current_token(self._opts))
        try:
            with self._http.stream(method, call.url, headers=call.headers, json=json, data=form) as res:
                if not res.is_success:
                    raise http_error(res, self._opts.limits.response_bytes, self._opts.request_timeout)
                body = read_bounded(res, call.limit, self._opts.request_timeout)
        except httpx.TransportError as err:
            raise unreachable(self._opts.url, err) from None
        return parse_json_object(body, call.what)

    def agent_token(self) -> str:
        """The agent's own key or token, as given to ``connect`` (a callable is called).

        Example::

            headers = {"authorization": f"Bearer {kw.agent_token()}"}
        """
        return current_token(self._opts)

    # -- helpers of other modules (thin) --------------------------------------------------------

    def token_provider(self, name: str) -> Callable[[], str]:
        """A zero-argument callable answering the current access token of an
        ``oauth2_client_credentials`` credential (refreshing it near expiry; see ``keyward.tokens``).

        Example::

            client = AzureOpenAI(azure_endpoint=endpoint, api_version=version,
                                 azure_ad_token_provider=kw.token_provider("azure_openai"))
        """
        return cast("Callable[[], str]", helper_module("tokens").token_provider(self, name))

    def token_credential(self, name: str) -> Any:
        """An Azure-style credential: ``get_token(*scopes)`` → an object with ``.token`` and
        ``.expires_on`` (epoch s). See ``keyward.tokens``.

        Example::

            token = kw.token_credential("azure_openai").get_token("https://cognitiveservices.azure.com/.default")
        """
        return helper_module("tokens").token_credential(self, name)

    def exchange(self, subject_token: str, audience: str, scope: str | Sequence[str] | None = None) -> str:
        """A delegated access token for agent ``audience`` on behalf of the caller of ``subject_token``
        (RFC 8693, this agent's key as actor token). See ``keyward.delegation``.

        Example::

            token = kw.exchange(caller_jwt, "billing", scope="read:invoices")
        """
        return cast(str, helper_module("delegation").exchange(self, subject_token, audience, scope))

    def with_user_credentials(self, tool: Any, *, names: Any, inject: str = "params", name: str | None = None,
                              **kwargs: Any) -> Any:  # fmt: skip
        """Wraps ``tool`` so each call gets the calling user's own credentials (SPEC §7). See
        ``keyward.tools``.

        Example::

            search = kw.with_user_credentials(search_impl, names=["github_token"], inject="params")
        """
        tools = helper_module("tools")
        return tools.with_user_credentials(self, tool, names=names, inject=inject, name=name, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stops the background threads and the event stream, closes the connections and drops the
        values from memory; ``get`` then raises KeywardError ``closed``. Safe to call twice.

        Example::

            kw = Keyward.connect(url=url, token=token)
            try:
                serve(kw)
            finally:
                kw.close()
        """
        if self._core.closed:
            return
        # Tool-call audit records still queued are delivered first (bounded by the request time).
        from ._tool_audit import AuditQueue, existing_audit_queue

        queue = existing_audit_queue(self)
        if isinstance(queue, AuditQueue):
            queue.close(self._opts.request_timeout)
        with self._cond:
            if self._core.closed:
                return
            self._core.close()
            self._cond.notify_all()
        self._closing.set()
        stream_res = self._stream_res  # read once: the stream thread clears it when it ends
        if stream_res is not None:
            interrupt(stream_res)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(self._opts.request_timeout + _JOIN_GRACE)
        self._http.close()
        self._clear_listeners()

    def __enter__(self) -> Keyward:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- I/O ------------------------------------------------------------------------------------

    def _fetch_page(self, since: str | None, etag: str | None) -> Page | None:
        """``GET /v1/credentials`` (``?since=``, ``If-None-Match``); None for a 304."""
        url, headers = self._core.credentials_request(since, etag)
        headers["authorization"] = f"Bearer {current_token(self._opts)}"
        try:
            with self._http.stream("GET", url, headers=headers) as res:
                if res.status_code == 304:
                    return None
                if not res.is_success:
                    raise http_error(res, self._opts.limits.response_bytes, self._opts.request_timeout)
                body = read_bounded(res, credentials_limit(self._opts), self._opts.request_timeout)
                etag_header = res.headers.get("etag")
        except httpx.TransportError as err:
            if self._core.closed:
                raise closed_error() from None
            raise unreachable(self._opts.url, err) from None
        return parse_credentials(body, etag_header)

    def _fetch(self, fetch: Fetch) -> tuple[Page | None, bool]:
        try:
            return self._fetch_page(fetch.since, fetch.etag), fetch.since is None
        except KeywardError as err:
            if not LoopCore.cursor_rejected(fetch, err):
                raise
            return self._fetch_page(None, None), True

    def _next_fetch(self) -> tuple[Fetch | None, KeywardError | None]:
        """Sleeps until a fetch is due (or the values just turned stale, to report it)."""
        core, clock = self._core, self._opts.clock
        with self._cond:
            while not core.closed:
                mono = clock.monotonic()
                stale = core.stale_error(mono)
                if stale is not None:
                    return None, stale
                if core.fetch_due(mono):
                    return core.begin_fetch(), None
                self._cond.wait(max(0.0, core.next_wake(mono) - mono))
        return None, None

    def _fetch_worker(self) -> None:
        core, clock = self._core, self._opts.clock
        while not core.closed:
            fetch, stale = self._next_fetch()
            if stale is not None:
                self._report_error(stale)
            if fetch is None:
                continue
            try:
                outcome: tuple[Page | None, bool] | Exception = self._fetch(fetch)
            except Exception as exc:
                outcome = exc
            with self._cond:
                changes, errors = core.fetch_settled(fetch, outcome, clock.monotonic(), clock.time())
                self._cond.notify_all()
            self._report(changes, errors)

    def _stream_worker(self) -> None:
        core, clock = self._core, self._opts.clock
        while not core.closed:
            kind, got_data, err = self._run_stream()
            with self._cond:
                if core.closed:
                    return
                delay = core.stream_ended(kind, got_data, err, clock.monotonic())
                self._cond.notify_all()  # polling takes over
            if err is not None:
                self._report_error(err)
            self._closing.wait(delay)

    def _run_stream(self) -> tuple[StreamEnd, bool, KeywardError | None]:
        """Holds one connection to the event stream until it ends, fails, or stays silent for
        ``heartbeat_timeout`` (see ``_drive.stream_timeout``)."""
        core, opts, clock = self._core, self._opts, self._opts.clock
        with self._cond:
            url, headers = core.events_request()
            session = StreamSession(core)
        try:
            headers["authorization"] = f"Bearer {current_token(opts)}"
            with self._http.stream("GET", url, headers=headers, timeout=stream_timeout(opts)) as res:
                self._stream_res = res
                answer = stream_answer(res)
                if answer == "refused":
                    return "failed", False, http_error(res, opts.limits.response_bytes, opts.request_timeout)
                if answer is not None:
                    return answer[0], False, answer[1]
                with self._cond:
                    if core.closed:
                        return "ended", False, None
                    core.stream_opened(clock.monotonic(), clock.time())
                    self._cond.notify_all()
                for raw in res.iter_raw():
                    with self._cond:
                        changes, woke = session.feed(raw, clock.monotonic(), clock.time())
                        if woke:
                            self._cond.notify_all()
                    self._report_changes(changes)
                return "ended", session.got_data, None
        except Exception as exc:
            return "failed", session.got_data, stream_failure(exc, opts)
        finally:
            self._stream_res = None
            with self._cond:
                session.finish()
