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

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._tool_audit import AsyncAuditQueue, AuditError, AuditQueue, audit_queue, log_audit_error
from ._tool_call import Core, is_async_requester
from ._tool_context import acting_for
from ._tool_errors import ToolError, ToolTimeoutError, UserCredentialError
from ._tool_inject import default_env_var, plan_injection
from ._types import AsyncRequester, Requester

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
    return audit_queue(requester, is_async=is_async_requester(requester))
