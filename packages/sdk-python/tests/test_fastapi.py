"""``keyward.fastapi.require_token`` in a real FastAPI app (TestClient, in process); tokens minted by
the REAL Keyward server and its JWKS fetched from it.

No ``from __future__ import annotations``: FastAPI reads the routes' annotations at run time, and
they name local variables (the verifier).
"""

import time
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from keyward.fastapi import add_error_handler, require_token
from keyward.verify import Claims, Verifier
from support.server import KeywardServer, unique
from test_verify import consumer_key, issuer_of, token_for
from test_verify_support import assert_no_token_in, assert_scope_denied


def make_app(verifier: Verifier, *, handler: bool = True) -> FastAPI:
    app = FastAPI()
    if handler:
        add_error_handler(app)
    reader = require_token(verifier, scopes=["reports:read"])

    @app.get("/me")
    async def me(
        claims: Annotated[Claims, Depends(require_token(verifier))], request: Request
    ) -> dict[str, Any]:
        assert request.state.keyward_claims is claims
        return {"sub": claims.subject, "scopes": list(claims.scopes), "claims": claims}

    @app.get("/reports")
    def reports(claims: Annotated[Claims, Depends(reader)]) -> dict[str, str]:
        return {"sub": claims.subject}

    @app.get("/admin")
    async def admin(
        claims: Annotated[Claims, Depends(require_token(verifier, scopes=["admin", "reports:read"]))],
    ) -> str:
        return claims.subject

    return app


@pytest.fixture(scope="module")
def world(keyward: KeywardServer) -> tuple[TestClient, str, str]:
    agent = keyward.admin.agent(unique("api"))
    key = consumer_key(keyward, "fa", [f"agent:{agent}", "reports:read"])
    verifier = Verifier(issuer=issuer_of(keyward), audience=agent)
    return TestClient(make_app(verifier)), token_for(keyward, key, audience=agent), agent


def test_200_with_the_claims(world: tuple[TestClient, str, str]) -> None:
    client, token, agent = world
    res = client.get("/me", headers={"authorization": f"Bearer {token}"})
    assert res.status_code == 200
    body = res.json()
    assert body["sub"].startswith("consumer:fa-") and "reports:read" in body["scopes"]
    assert body["claims"]["aud"] == agent
    assert client.get("/reports", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_401_missing_without_error_attribute(world: tuple[TestClient, str, str]) -> None:
    client, _, _ = world
    res = client.get("/me", headers={"x-request-id": "trace-1"})
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == 'Bearer realm="keyward"'
    assert res.json() == {
        "error": {
            "code": "missing_credentials",
            "message": res.json()["error"]["message"],
            "request_id": "trace-1",
        }
    }
    assert res.headers["x-request-id"] == "trace-1"


def test_401_invalid_and_expired(world: tuple[TestClient, str, str]) -> None:
    client, token, _ = world
    h, p, s = token.split(".")
    forged = f"{h}.{p}.{s[::-1]}"
    res = client.get("/me", headers={"authorization": f"Bearer {forged}", "x-request-id": token})
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == 'Bearer realm="keyward", error="invalid_token"'
    assert res.json()["error"]["code"] == "invalid_token"
    assert_no_token_in(res.text + str(res.headers), forged)
    assert_no_token_in(res.text + str(res.headers), token)  # a credential-like request id is not echoed


def test_403_missing_scope(world: tuple[TestClient, str, str]) -> None:
    client, token, _ = world
    res = client.get("/admin", headers={"authorization": f"Bearer {token}"})
    assert_scope_denied(res, "admin reports:read", mentions="admin")


def test_503_when_the_issuer_is_down(own_keyward: KeywardServer) -> None:
    agent = own_keyward.admin.agent()
    key = consumer_key(own_keyward, "down", [f"agent:{agent}"])
    token = token_for(own_keyward, key, audience=agent)
    client = TestClient(make_app(Verifier(issuer=issuer_of(own_keyward), audience=agent, timeout=2)))
    own_keyward.stop()
    res = client.get("/me", headers={"authorization": f"Bearer {token}"})
    assert res.status_code == 503
    assert "www-authenticate" not in res.headers
    assert res.json()["error"]["code"] == "jwks_unavailable"
    own_keyward.start()  # same port and keys: the verifier recovers once the first-load pacing allows
    deadline = time.monotonic() + 20
    status = 0
    while status != 200 and time.monotonic() < deadline:
        status = client.get("/me", headers={"authorization": f"Bearer {token}"}).status_code
        time.sleep(0.1)
    assert status == 200


def test_without_the_handler_fastapi_renders_detail(
    world: tuple[TestClient, str, str], keyward: KeywardServer
) -> None:
    _, _, agent = world
    client = TestClient(make_app(Verifier(issuer=issuer_of(keyward), audience=agent), handler=False))
    res = client.get("/me")
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == 'Bearer realm="keyward"'
    assert res.json()["detail"]["code"] == "missing_credentials"
