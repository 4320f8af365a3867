"""One wrapped tool's call, sync or asyncio (see ``keyward.tools``): the user's values fetched all
or nothing, injected, redacted from what comes back, and the call audited however it ends."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from ._redact import Redactor, Tally, describe_exception, redact_value
from ._tool_audit import AuditError, AuditEvent, audit_queue
from ._tool_context import current_caller_token
from ._tool_errors import ToolError, ToolTimeoutError, UserCredentialError
from ._tool_inject import Plan, injected, model_kwargs
from ._types import AsyncRequester, Requester
from .errors import KeywardError


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


def is_async_requester(requester: object) -> bool:
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
        self.is_async = is_async_requester(requester)
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

    def run(self, token: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[bool, Any]:
        """(True, redacted result) or (False, an exception safe to raise). Every value lives in this
        frame only, which has returned before the caller raises."""
        try:
            values = self._fetch(token)
        except KeywardError as err:
            return False, err.with_traceback(None)  # its frames hold the user's token
        call = _Call(self, token, values, cast(Requester, self.requester).agent_token())
        with call:
            call.result = self.invoke(*args, **call.kwargs(kwargs))
        return call.outcome()

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
        call = _Call(self, token, values, own)
        call_kwargs = call.kwargs(kwargs)
        with call:
            if self.invoke_is_async:
                call.result = await self._bounded(self.invoke(*args, **call_kwargs))
            else:
                call.result = await self._bounded(asyncio.to_thread(self.invoke, *args, **call_kwargs))
        return call.outcome()

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


class _Call:
    """One call's values at work: the tool's keyword arguments, the redactor of the values (and the
    agent's own token), and the audit record sent when it ends, however it ends. Used as ``with
    call: call.result = tool(...)``: the tool's exception becomes a redacted one, kept for
    :meth:`outcome`; an interruption (KeyboardInterrupt, cancellation) is recorded and goes on."""

    __slots__ = ("_core", "_error", "_redactor", "_tally", "_token", "_values", "result")

    def __init__(self, core: Core, token: str, values: Mapping[str, str], own_token: str) -> None:
        self._core, self._token, self._values = core, token, values
        self._redactor = Redactor([*values.values(), own_token])
        self._tally = Tally()
        self._error: BaseException | None = None
        self.result: Any = None

    def kwargs(self, model_args: Mapping[str, Any]) -> dict[str, Any]:
        """The model's arguments without planted ones, plus the injected keyword."""
        plan = self._core.plan
        out = model_kwargs(plan, model_args)
        out[plan.kwarg] = injected(plan, self._values)
        return out

    def __enter__(self) -> _Call:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            self.result = redact_value(self.result, self._redactor, self._tally)
        elif isinstance(exc, Exception):
            self._error = _safe(exc, self._redactor, self._tally)
        self._report(exc is None)
        return isinstance(exc, Exception)  # the original, which may hold values, is dropped here

    def outcome(self) -> tuple[bool, Any]:
        """(True, redacted result) or (False, the redacted exception to raise)."""
        return (True, self.result) if self._error is None else (False, self._error)

    def _report(self, ok: bool) -> None:
        core = self._core
        event: AuditEvent = {
            "tool": core.name,
            "user": user_of(self._token),
            "outcome": "ok" if ok else "error",
            "redactions": self._tally.count,
        }
        core.queue.send(event, core.on_audit_error)
