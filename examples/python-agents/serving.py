"""How the example services run: uvicorn on 127.0.0.1, quiet, one ``<name> listening on http://…`` line
once it accepts requests (the runner waits for that line), and one line instead of a traceback when a
setting is missing."""

from __future__ import annotations

import os
import socket
import sys
from typing import NoReturn

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from keyward.fastapi import add_error_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Largest request body a service reads (LangServe inputs here are a few hundred characters).
MAX_BODY_BYTES = 64 * 1024


def required_env(name: str, why: str) -> str:
    """An environment variable that must be set; exits 2 with one line naming it otherwise."""
    value = os.environ.get(name, "")
    if not value:
        fail(f"{name} is not set: {why}", code=2)
    return value


def keyward_url_from_env() -> str:
    """``KEYWARD_URL`` without a trailing slash: the verifier compares it with the tokens' ``iss`` exactly."""
    return required_env("KEYWARD_URL", "Keyward's base URL, e.g. http://127.0.0.1:8085").rstrip("/")


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"{os.path.basename(sys.argv[0])}: cannot start: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, name: str, url: str) -> None:
        super().__init__(config)
        self._name = name
        self._url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(f"{self._name} listening on {self._url}", flush=True)


def serve(app: ASGIApp, name: str, port: int) -> None:
    """Serves ``app`` until SIGINT/SIGTERM (uvicorn finishes in-flight requests first).

    ``port`` 0 picks a free one; the line printed names the real port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as err:
        fail(f"port {port} on 127.0.0.1: {err.strerror}")
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    _AnnouncingServer(config, name, url).run(sockets=[sock])


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The ``{"error": {"code", "message"}}`` body Keyward and the SDK use, for the services' own errors."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def new_app(title: str) -> FastAPI:
    """A FastAPI app answering every error in Keyward's error shape, reading at most MAX_BODY_BYTES."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    add_error_handler(app)  # the SDK's refusals (401/403/503) in Keyward's error body

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(400, "invalid_request", f"{where or 'body'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        # BodyLimit's refusal carries its whole body in ``detail``; anything else is wrapped here.
        detail = err.detail
        if isinstance(detail, dict) and "error" in detail:
            return JSONResponse(detail, status_code=err.status_code, headers=err.headers)
        code = (
            "not_found"
            if err.status_code == 404
            else "method_not_allowed"
            if err.status_code == 405
            else "error"
        )
        return error_response(err.status_code, code, str(detail))

    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(OneLineErrors, name=title)  # added last: the outermost of ours
    return app


class OneLineErrors:
    """An unexpected exception becomes a 500 in Keyward's error shape and one log line naming its type.

    Starlette's own handler would log the traceback, and an error's message may carry anything, tokens
    included: neither reaches the log or the caller here.
    """

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as err:
            print(
                f"{self.name}: {scope['method']} {scope['path']} failed: {type(err).__name__}",
                file=sys.stderr,
                flush=True,
            )
            if not started:
                response = error_response(500, "internal", f"the {self.name} agent failed unexpectedly")
                await response(scope, receive, send)


class BodyLimit:
    """Refuses a request body over ``max_bytes`` with 413: by its Content-Length before reading, or as
    soon as a chunked body passes the limit (an HTTPException, answered by the app's handler)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, "payload_too_large", self._message())(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    detail = {"error": {"code": "payload_too_large", "message": self._message()}}
                    raise StarletteHTTPException(413, detail=detail)  # type: ignore[arg-type]
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"the body is larger than {self.max_bytes} bytes"
