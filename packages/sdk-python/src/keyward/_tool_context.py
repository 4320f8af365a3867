"""Whose call this is: the access token of the caller the current code acts for.

One context variable serves both the tools that act for a user (``keyward.tools``) and delegated
calls to other agents (``keyward.delegation.DelegatedAuth``): an agent handling a request says once
"from here on I act for the caller of this token", and every wrapped tool and every delegated call
made inside (threads started with ``contextvars.copy_context``, asyncio tasks) uses that token.
It is never read from a model's arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_caller_token: ContextVar[str | None] = ContextVar("keyward_caller_token", default=None)


@contextmanager
def acting_for(token: str) -> Iterator[None]:
    """Within the block, wrapped tools and delegated calls act for the caller of ``token``: the
    access token the request came with (the JWT the gateway forwarded: ``sub`` = the caller,
    ``aud`` = this agent).

    Example::

        from keyward.tools import acting_for

        @app.post("/run")
        async def run(request: Request) -> dict[str, str]:
            with acting_for(request.headers["authorization"].removeprefix("Bearer ")):
                return {"functions": await list_functions(region="eu")}
    """
    if not isinstance(token, str) or not token:
        raise ValueError("acting_for: token must be a non-empty string")
    reset = _caller_token.set(token)
    try:
        yield
    finally:
        try:
            _caller_token.reset(reset)
        except ValueError:
            # Left in another context than entered (a framework ran the teardown elsewhere): the
            # entering context ends with its task; here, at least stop acting for this caller.
            _caller_token.set(None)


def current_caller_token() -> str | None:
    """The token set by the innermost :func:`acting_for`, or None.

    Example::

        with acting_for(jwt):
            assert current_caller_token() == jwt
    """
    return _caller_token.get()
