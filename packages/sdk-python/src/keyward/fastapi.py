"""A FastAPI dependency that requires a Keyward access token (``pip install keyward[fastapi]``).

The same answers as :class:`keyward.asgi.KeywardAuthMiddleware` (one implementation,
:func:`keyward.asgi.authenticate`). A dependency cannot write a response itself, so a refusal is
raised as :class:`KeywardHTTPException` (status and ``WWW-Authenticate`` set); FastAPI's default
handler renders it as ``{"detail": {"code", "message", "request_id"}}``. Call
:func:`add_error_handler` once to render SPEC §4's ``{"error": {…}}`` body instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from .asgi import Denial, authenticate, check_realm
from .verify import Claims, Verifier

__all__ = ["KeywardHTTPException", "add_error_handler", "require_token"]


class KeywardHTTPException(HTTPException):
    """A refusal of :func:`require_token`: 401, 403 or 503, ``detail`` the §4 error object."""

    def __init__(self, denial: Denial) -> None:
        detail = {"code": denial.code, "message": denial.message, "request_id": denial.request_id}
        super().__init__(denial.status, detail=detail, headers=dict(denial.headers))
        self.denial = denial


def require_token(
    verifier: Verifier, scopes: Iterable[str] = (), *, realm: str = "keyward"
) -> Callable[[Request], Awaitable[Claims]]:
    """A dependency returning the request's verified :class:`~keyward.verify.Claims` (also set as
    ``request.state.keyward_claims``); every one of ``scopes`` is required. Verification is async
    (:meth:`Verifier.averify`): a JWKS fetch never blocks the event loop.

    Example::

        from typing import Annotated
        from fastapi import Depends, FastAPI
        from keyward.fastapi import add_error_handler, require_token
        from keyward.verify import Claims, Verifier

        verifier = Verifier(issuer="https://keyward.internal", audience="research-agent")
        app = FastAPI()
        add_error_handler(app)

        @app.get("/reports")
        async def reports(claims: Annotated[Claims, Depends(require_token(verifier, scopes=["read"]))]):
            return {"caller": claims.subject}
    """
    required = tuple(scopes)
    check_realm(realm)

    async def keyward_token(request: Request) -> Claims:
        outcome = await authenticate(
            verifier,
            _single(request, "authorization"),
            _single(request, "x-request-id"),
            required,
            realm,
        )
        if isinstance(outcome, Denial):
            raise KeywardHTTPException(outcome)
        request.state.keyward_claims = outcome
        return outcome

    return keyward_token


def _single(request: Request, name: str) -> str | None:
    values = request.headers.getlist(name)
    return values[0] if len(values) == 1 else None


def add_error_handler(app: FastAPI) -> None:
    """Renders :class:`KeywardHTTPException` as SPEC §4's ``{"error": {"code", "message",
    "request_id"}}`` on ``app`` (other HTTP exceptions keep FastAPI's handling).

    Example::

        app = FastAPI()
        add_error_handler(app)
    """

    async def handler(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, KeywardHTTPException)  # registered for this class only
        denial = exc.denial
        return Response(denial.body(), status_code=denial.status, headers=denial.headers)

    app.add_exception_handler(KeywardHTTPException, handler)
