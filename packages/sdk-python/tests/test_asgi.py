"""``keyward.asgi.KeywardAuthMiddleware`` on a real Starlette app (TestClient, in process); tokens
minted by the REAL Keyward server and its JWKS fetched from it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from keyward.asgi import KeywardAuthMiddleware
from keyward.verify import Claims, Verifier
from support.server import KeywardServer, unique
from test_verify import consumer_key, issuer_of, token_for
from test_verify_support import assert_no_token_in, assert_scope_denied


async def me(request: Request) -> JSONResponse:
    claims = request.state.keyward_claims
    assert isinstance(claims, Claims)
    return JSONResponse({"sub": claims.subject, "act": claims.act_chain})


async def health(request: Request) -> PlainTextResponse:
    assert "keyward_claims" not in request.scope.get("state", {})
    return PlainTextResponse("ok")


async def stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"chunk {i}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.state.keyward_claims.subject)
    await websocket.close()


def make_app(verifier: Verifier, scopes: tuple[str, ...] = ()) -> Starlette:
    app = Starlette(
        routes=[
            Route("/me", me),
            Route("/health", health),
            Route("/stream", stream),
            WebSocketRoute("/ws", ws),
        ]
    )
    app.add_middleware(KeywardAuthMiddleware, verifier=verifier, scopes=scopes, exclude_paths=("/health",))
    return app


@pytest.fixture(scope="module")
def world(keyward: KeywardServer) -> tuple[Verifier, str]:
    agent = keyward.admin.agent(unique("asgi"))
    key = consumer_key(keyward, "as", [f"agent:{agent}", "read"])
    return Verifier(issuer=issuer_of(keyward), audience=agent), token_for(keyward, key, audience=agent)


def test_claims_in_request_state(world: tuple[Verifier, str]) -> None:
    verifier, token = world
    res = TestClient(make_app(verifier)).get("/me", headers={"authorization": f"Bearer {token}"})
    assert res.status_code == 200
    assert res.json()["sub"].startswith("consumer:as-")


def test_excluded_path_and_streaming_pass_through(world: tuple[Verifier, str]) -> None:
    verifier, token = world
    client = TestClient(make_app(verifier))
    assert client.get("/health").text == "ok"
    res = client.get("/stream", headers={"authorization": f"Bearer {token}"})
    assert res.text == "chunk 0\nchunk 1\nchunk 2\n"


def test_refusals(world: tuple[Verifier, str]) -> None:
    verifier, token = world
    client = TestClient(make_app(verifier, scopes=("read", "write")))
    missing = client.get("/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="keyward"'
    assert missing.json()["error"]["code"] == "missing_credentials"
    assert missing.headers["content-type"].startswith("application/json")

    bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    invalid = client.get("/me", headers={"authorization": f"Bearer {bad}"})
    assert invalid.status_code == 401
    assert invalid.headers["www-authenticate"] == 'Bearer realm="keyward", error="invalid_token"'
    assert invalid.json()["error"]["code"] == "invalid_token"
    assert_no_token_in(invalid.text, bad)

    twice = client.get(
        "/me", headers=[("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")]
    )
    assert twice.status_code == 401

    scope = client.get("/me", headers={"authorization": f"Bearer {token}"})
    assert_scope_denied(scope, "read write", mentions="write")


def test_503_when_jwks_unreachable(world: tuple[Verifier, str]) -> None:
    _, token = world
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    verifier = Verifier(
        issuer=world[0].issuer, audience="x", jwks_url=f"http://127.0.0.1:{port}/jwks", timeout=2
    )
    res = TestClient(make_app(verifier)).get("/me", headers={"authorization": f"Bearer {token}"})
    assert res.status_code == 503
    assert res.json()["error"]["code"] == "jwks_unavailable"
    assert "www-authenticate" not in res.headers


def test_websocket_needs_a_token_too(world: tuple[Verifier, str]) -> None:
    verifier, token = world
    client = TestClient(make_app(verifier))
    with client.websocket_connect("/ws", headers={"authorization": f"Bearer {token}"}) as conn:
        assert conn.receive_text().startswith("consumer:as-")
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws") as conn:
        conn.receive_text()
    assert info.value.code == 1008


def test_bad_realm_refused(world: tuple[Verifier, str]) -> None:
    with pytest.raises(ValueError, match="realm"):
        KeywardAuthMiddleware(make_app(world[0]), verifier=world[0], realm='x", error="y')
