"""Tools that act for a user with that user's own credentials (SPEC §7).

``with_user_credentials(kw, tool, names=[…], inject=…)`` wraps a plain function (sync or async) or a
LangChain tool. Each call:

1. takes the user's access token from the caller, never from the model's arguments: the token set
   by :func:`acting_for` (the usual way: once per incoming request), ``wrapped.call_as(token, …)``,
   or for a LangChain tool ``config["configurable"]["user_token"]``;
2. fetches that user's credentials, all or nothing (``POST /v1/tools/credentials``; refusals raise
   :class:`UserCredentialError` with the server's code);
3. injects them: ``"params"`` → keyword ``credentials={name: value}``; ``"env"`` → keyword ``env``,
   a fresh environment for child processes (PATH, HOME, LANG, LC_ALL, TZ, TMPDIR from
   ``os.environ``, or ``base_env``, plus each credential under its variable: the name upper-cased,
   other characters as ``_``, or as mapped by ``env={"VAR": name}``; ``os.environ`` is never
   written); ``"headers"`` → keyword ``headers`` built from templates (default with one name:
   ``{"Authorization": "Bearer {name}"}``). A planted ``credentials``, ``user``, ``user_id`` or
   injection keyword in the model's arguments is removed first;
4. redacts every value (raw, base64 std/url, padded or not, hex, URL/JSON/HTML escapes) and the
   agent's own token from the result, and from a raised exception: the caller gets a
   :class:`ToolError` holding the redacted description, raised without cause or context, so no
   traceback holds a value;
5. reports ``{tool, user, outcome, redactions}`` to Keyward's audit log in the background.

A sync tool wrapped with a sync client stays sync; an async tool, or any tool wrapped with an
asyncio client, becomes async. ``timeout`` (default 60 s) bounds async calls; a sync tool cannot be
interrupted, so it has none unless it runs under an asyncio client (then the caller stops waiting).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from ._redact import Redactor, Tally, describe_exception, redact_value
from ._tool_audit import (
    AsyncAuditQueue,
    AuditError,
    AuditEvent,
    AuditQueue,
    audit_queue,
    log_audit_error,
)
from ._tool_context import acting_for, current_caller_token
from ._tool_inject import Plan, default_env_var, injected, model_kwargs, plan_injection
from ._types import AsyncRequester, Requester
from .errors import KeywardError

__all__ = [
    "AuditError",
    "ToolError",
    "ToolTimeoutError",
    "UserCredentialError",
    "UserToken",
    "acting_for",
    "audit_queue_of",
    "default_env_var",
    "with_user_credentials",
]

DEFAULT_TIMEOUT = 60.0


class UserCredentialError(KeywardError):
    """A tool call refused before the tool ran: no user token (``missing_user_token``), or
    Keyward's answer to ``POST /v1/tools/credentials``: ``invalid_token`` (401),
    ``credential_not_granted`` (403), ``credential_not_found`` (404) or another server code. The
    message names credentials at most, never a value or the user's token.

    Example::

        try:
            await list_functions(region="eu")
        except UserCredentialError as err:
            if err.code == "credential_not_found":
                return "connect your cloud account first"
            raise
    """


class ToolTimeoutError(KeywardError):
    """An async wrapped tool did not finish within its ``timeout`` (code ``tool_timeout``); it was
    cancelled.

    Example::

        try:
            await slow_tool(q="x")
        except ToolTimeoutError:
            return "the tool took too long"
    """

    def __init__(self, tool: str, timeout: float) -> None:
        super().__init__("tool_timeout", f'tool "{tool}" did not finish within {timeout:g} s')
        self.tool = tool
        self.timeout = timeout


class ToolError(Exception):
    """What a wrapped tool's own exception becomes: ``type_name`` (the original class's name) and
    the message, both redacted; ``code`` is the original's ``code`` attribute when it had a string
    one. The original exception (its arguments, attributes, traceback and chain may all hold a
    value) is dropped, so compare ``type_name`` or ``code``, not the class.

    Example::

        try:
            create_ticket(title="x")
        except ToolError as err:
            log.warning("ticket tool failed: %s", err)  # "HTTPStatusError: … [redacted] …"
    """

    def __init__(self, type_name: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message
        self.code = code

    def __repr__(self) -> str:
        return f"ToolError(type_name={self.type_name!r}, message={self.message!r})"


class UserToken:
    """A user token to pass in LangChain's ``config["configurable"]["user_token"]``.

    LangChain copies plain strings of ``configurable`` into the run's metadata, which callbacks and
    tracers (LangSmith) record; wrapped in ``UserToken`` it stays out of them (and of reprs).

    Example::

        agent.invoke({"messages": msgs}, config={"configurable": {"user_token": UserToken(jwt)}})
    """

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("UserToken: token must be a non-empty string")
        self._token = token

    @property
    def token(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "UserToken('…')"


def user_of(token: str) -> str:
    """``sub`` of the user token, read without verifying it: Keyward verified the token a moment ago
    when it answered ``/v1/tools/credentials`` (401 otherwise), so the label is the verified user."""
    try:
        part = token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        sub = payload.get("sub") if isinstance(payload, dict) else None
        if isinstance(sub, str) and sub.startswith("user:"):
            return sub
    except (IndexError, ValueError, TypeError):
        pass
    return "user:unknown"


def _is_async_requester(requester: object) -> bool:
    return inspect.iscoroutinefunction(getattr(requester, "request_json", None))


def _values(body: dict[str, Any], names: Sequence[str]) -> dict[str, str]:
    creds = body.get("credentials")
    if not isinstance(creds, dict):
        raise KeywardError(
            "invalid_response", "unexpected answer from POST /v1/tools/credentials: no credentials"
        )
    out: dict[str, str] = {}
    for n in names:
        value = creds.get(n)
        if not isinstance(value, str):
            raise KeywardError(
                "invalid_response",
                f'unexpected answer from POST /v1/tools/credentials: no string value for "{n}"',
            )
        out[n] = value
    return out


def _refused(err: KeywardError) -> KeywardError:
    if err.status is None:
        return err
    return UserCredentialError(err.code, err.message, status=err.status, request_id=err.request_id)


def _safe(err: BaseException, r: Redactor, tally: Tally) -> BaseException:
    if isinstance(err, ToolTimeoutError | UserCredentialError):
        return err.with_traceback(None)  # its frames hold the values
    raw_code = getattr(err, "code", None)
    code = redact_value(raw_code, r, tally) if isinstance(raw_code, str) else None
    return ToolError(
        redact_value(type(err).__name__, r, tally), redact_value(describe_exception(err), r, tally), code
    )


class Core:
    """One wrapped tool's rules: where values come from, how they go in, redaction and audit."""

    def __init__(
        self,
        requester: Requester | AsyncRequester,
        plan: Plan,
        name: str,
        invoke: Callable[..., Any],
        timeout: float | None,
        on_audit_error: Callable[[AuditError], None],
    ) -> None:
        self.requester = requester
        self.is_async = _is_async_requester(requester)
        self.plan = plan
        self.name = name
        self.invoke = invoke
        self.invoke_is_async = inspect.iscoroutinefunction(invoke)
        self.timeout = timeout
        self.on_audit_error = on_audit_error
        self.queue = audit_queue(requester, is_async=self.is_async)

    def token(self, explicit: str | None) -> str:
        token = explicit if explicit is not None else current_caller_token()
        if not isinstance(token, str) or not token:
            raise UserCredentialError(
                "missing_user_token",
                f'tool "{self.name}" was called without a user token: '
                "call it inside keyward.tools.acting_for(token), or with .call_as(token, …)",
            )
        return token

    def _fetch(self, token: str) -> dict[str, str]:
        body = {"user_token": token, "names": list(self.plan.names)}
        try:
            answer = cast(Requester, self.requester).request_json("POST", "/v1/tools/credentials", json=body)
        except KeywardError as err:
            raise _refused(err) from None
        return _values(answer, self.plan.names)

    async def _afetch(self, token: str) -> dict[str, str]:
        if not self.is_async:
            return await asyncio.to_thread(self._fetch, token)
        body = {"user_token": token, "names": list(self.plan.names)}
        try:
            requester = cast(AsyncRequester, self.requester)
            answer = await requester.request_json("POST", "/v1/tools/credentials", json=body)
        except KeywardError as err:
            raise _refused(err) from None
        return _values(answer, self.plan.names)

    def _call_args(self, values: Mapping[str, str], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        out = model_kwargs(self.plan, kwargs)
        out[self.plan.kwarg] = injected(self.plan, values)
        return out

    def _report(self, token: str, ok: bool, count: int) -> None:
        event: AuditEvent = {"tool": self.name, "user": user_of(token), "outcome": "ok" if ok else "error",
                             "redactions": count}  # fmt: skip
        self.queue.send(event, self.on_audit_error)

    def run(self, token: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[bool, Any]:
        """(True, redacted result) or (False, an exception safe to raise). Every value lives in this
        frame only, which has returned before the caller raises."""
        try:
            values = self._fetch(token)
        except KeywardError as err:
            return False, err.with_traceback(None)  # its frames hold the user's token
        r = Redactor([*values.values(), cast(Requester, self.requester).agent_token()])
        tally = Tally()
        try:
            result = self.invoke(*args, **self._call_args(values, kwargs))
        except Exception as err:
            out = False, _safe(err, r, tally)
        except BaseException:
            self._report(token, False, tally.count)
            raise
        else:
            out = True, redact_value(result, r, tally)
        self._report(token, out[0], tally.count)
        return out

    async def arun(self, token: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[bool, Any]:
        """:meth:`run` for asyncio; the call is cancelled at ``timeout``."""
        try:
            values = await self._afetch(token)
        except KeywardError as err:
            return False, err.with_traceback(None)
        if self.is_async:
            own = await cast(AsyncRequester, self.requester).agent_token()
        else:
            own = cast(Requester, self.requester).agent_token()
        r = Redactor([*values.values(), own])
        tally = Tally()
        call_kwargs = self._call_args(values, kwargs)
        try:
            if self.invoke_is_async:
                result = await self._bounded(self.invoke(*args, **call_kwargs))
            else:
                result = await self._bounded(asyncio.to_thread(self.invoke, *args, **call_kwargs))
        except Exception as err:
            out = False, _safe(err, r, tally)
        except BaseException:
            self._report(token, False, tally.count)
            raise
        else:
            out = True, redact_value(result, r, tally)
        self._report(token, out[0], tally.count)
        return out

    async def _bounded(self, coro: Any) -> Any:
        task = asyncio.ensure_future(coro)
        if self.timeout is None:
            return await task
        done, _ = await asyncio.wait({task}, timeout=self.timeout)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise ToolTimeoutError(self.name, self.timeout)
        return task.result()


def _public_signature(func: Callable[..., Any], kwarg: str) -> inspect.Signature | None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    return sig.replace(parameters=[p for p in sig.parameters.values() if p.name != kwarg])


def _wrap_function(core: Core, func: Callable[..., Any]) -> Callable[..., Any]:
    wrapper: Any
    if core.is_async or core.invoke_is_async:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            ok, out = await core.arun(core.token(None), args, kwargs)
            if ok:
                return out
            raise out

        async def call_as(user_token: str, /, *args: Any, **kwargs: Any) -> Any:
            ok, out = await core.arun(core.token(user_token), args, kwargs)
            if ok:
                return out
            raise out

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ok, out = core.run(core.token(None), args, kwargs)
            if ok:
                return out
            raise out

        def call_as(user_token: str, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            ok, out = core.run(core.token(user_token), args, kwargs)
            if ok:
                return out
            raise out

    functools.update_wrapper(wrapper, func)
    annotations = dict(getattr(func, "__annotations__", {}))
    annotations.pop(core.plan.kwarg, None)
    wrapper.__annotations__ = annotations
    signature = _public_signature(func, core.plan.kwarg)
    if signature is not None:
        wrapper.__signature__ = signature
    wrapper.call_as = call_as
    wrapper.tool_name = core.name
    del wrapper.__wrapped__  # its signature (with the injected keyword) is not the tool's
    return wrapper  # type: ignore[no-any-return]


def with_user_credentials(
    requester: Requester | AsyncRequester,
    tool: Any,
    *,
    names: Sequence[str],
    inject: str = "params",
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    base_env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    on_audit_error: Callable[[AuditError], None] | None = None,
) -> Any:
    """Wraps ``tool`` (a function, sync or async, or a LangChain tool) so each call runs with the
    calling user's credentials, injected as ``inject`` says, redacted from what comes back, and
    audited (see the module's documentation). Usually called as ``kw.tools.with_user_credentials``.

    The wrapped function takes the model's arguments; the user comes from :func:`acting_for` or
    ``wrapped.call_as(user_token, …)``. A LangChain tool comes back as a LangChain tool whose
    schema no longer shows the injected argument; its user comes from
    ``config["configurable"]["user_token"]`` (a str or a :class:`UserToken`), else :func:`acting_for`.

    Example::

        def list_functions(region: str, credentials: dict[str, str]) -> list[str]:
            return cloud.list_functions(region, access_key=credentials["aliyun_ak"])

        tool = with_user_credentials(kw, list_functions, names=["aliyun_ak"], inject="params")
        with acting_for(forwarded_jwt):
            print(tool(region="eu-central-1"))
    """
    plan = plan_injection(names, inject, env=env, base_env=base_env, headers=headers)
    if timeout is not None and not timeout > 0:
        raise TypeError("with_user_credentials: timeout must be > 0 (or None)")
    from ._tool_langchain import is_langchain_tool, wrap_langchain_tool

    if is_langchain_tool(tool):
        return wrap_langchain_tool(
            tool, lambda invoke, tool_name: Core(
                requester, plan, name or tool_name, invoke, timeout, on_audit_error or log_audit_error
            ),
        )  # fmt: skip
    if not callable(tool):
        raise TypeError("with_user_credentials: tool must be a function or a LangChain tool")
    tool_name = name or getattr(tool, "__name__", "")
    if not isinstance(tool_name, str) or not tool_name or tool_name == "<lambda>":
        raise TypeError("with_user_credentials: the tool has no name: pass name= (audit records use it)")
    core = Core(requester, plan, tool_name, tool, timeout, on_audit_error or log_audit_error)
    return _wrap_function(core, tool)


def audit_queue_of(requester: Requester | AsyncRequester) -> AuditQueue | AsyncAuditQueue:
    """The audit queue of a client's wrapped tools: ``dropped`` counts records lost past the backlog;
    ``flush(timeout)`` / ``close()`` (``aflush()`` / ``aclose()`` for asyncio) wait for delivery.
    The client's ``close`` should close it.

    Example::

        queue = audit_queue_of(kw)
        queue.flush(timeout=5)
        assert queue.dropped == 0
    """
    return audit_queue(requester, is_async=_is_async_requester(requester))
