"""LangChain tools with user credentials: a ``StructuredTool`` (what ``@tool`` makes) comes back as a
new ``StructuredTool`` with the same name and description, whose schema no longer shows the
injected argument (the model can neither see nor fill it), and whose user token comes from the
run's ``config["configurable"]["user_token"]`` (else from ``acting_for``), never from the model.

langchain-core is optional: nothing here imports it until a LangChain tool is being wrapped, and a
tool can only be one if langchain-core was imported already.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._tool_inject import PLANTED

if TYPE_CHECKING:
    from ._tool_call import Core


def is_langchain_tool(obj: object) -> bool:
    mod = sys.modules.get("langchain_core.tools")
    return mod is not None and isinstance(obj, mod.BaseTool)


def config_token(config: Mapping[str, Any] | None) -> str | None:
    """``config["configurable"]["user_token"]``: a str, or a ``keyward.tools.UserToken``."""
    from .tools import UserToken

    configurable = (config or {}).get("configurable") or {}
    token = configurable.get("user_token") if isinstance(configurable, Mapping) else None
    if isinstance(token, UserToken):
        return token.token
    return token if isinstance(token, str) and token else None


def _without(schema: Any, drop: set[str]) -> Any:
    """The tool's argument schema without the fields the model must not fill."""
    if isinstance(schema, dict):
        props = {k: v for k, v in (schema.get("properties") or {}).items() if k not in drop}
        required = [r for r in schema.get("required") or [] if r not in drop]
        return {**schema, "properties": props, "required": required}
    from pydantic import create_model

    fields = getattr(schema, "model_fields", None)
    if fields is None or not any(n in drop for n in fields):
        return schema
    kept = {n: (f.annotation, f) for n, f in fields.items() if n not in drop}
    return create_model(schema.__name__, __doc__=schema.__doc__, **kept)  # type: ignore[call-overload]


def wrap_langchain_tool(tool: Any, make_core: Callable[[Callable[..., Any], str], Core]) -> Any:
    from langchain_core.runnables import RunnableConfig
    from langchain_core.tools import StructuredTool

    func, coroutine = getattr(tool, "func", None), getattr(tool, "coroutine", None)
    if func is None and coroutine is None:
        raise TypeError(
            "with_user_credentials: this LangChain tool has no func or coroutine: "
            "wrap the function and make the tool from the wrapped one"
        )
    sync_core = make_core(func, tool.name) if func is not None else None
    async_core = make_core(coroutine if coroutine is not None else func, tool.name)  # type: ignore[arg-type]
    if sync_core is not None and sync_core.is_async:
        sync_core = None  # an asyncio client: only the async path can fetch credentials

    def run(config: Any, **kwargs: Any) -> Any:
        assert sync_core is not None
        ok, out = sync_core.run(sync_core.token(config_token(config)), (), kwargs)
        if ok:
            return out
        raise out

    async def arun(config: Any, **kwargs: Any) -> Any:
        ok, out = await async_core.arun(async_core.token(config_token(config)), (), kwargs)
        if ok:
            return out
        raise out

    # LangChain passes the run's config to a parameter annotated with RunnableConfig.
    run.__annotations__ = {"config": RunnableConfig, "kwargs": Any, "return": Any}
    arun.__annotations__ = {"config": RunnableConfig, "kwargs": Any, "return": Any}
    drop = {*PLANTED, async_core.plan.kwarg}
    use_async = coroutine is not None or sync_core is None
    return StructuredTool(
        name=tool.name,
        description=tool.description,
        args_schema=_without(tool.args_schema, drop),
        func=run if sync_core is not None else None,
        coroutine=arun if use_async else None,
        return_direct=tool.return_direct,
        response_format=tool.response_format,
        handle_tool_error=tool.handle_tool_error,
        tags=tool.tags,
        metadata=tool.metadata,
    )
