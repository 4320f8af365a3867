"""Delegation against the real server: RFC 8693 exchange (W may call D, acting for caller C) and
DelegatedAuth on real httpx clients through the gateway to a tiny upstream that echoes the
Authorization it got."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from keyward import Keyward, KeywardError
from keyward.aio import AsyncKeyward
from keyward.delegation import DelegatedAuth, ExchangeError, acting_for, exchange
from support.server import KeywardServer, unique


def claims(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


class Echo:
    """An upstream agent that answers the Authorization header it received."""

    def __init__(self) -> None:
        seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                auth = self.headers.get("authorization") or ""
                seen.append(auth)
                data = json.dumps({"authorization": auth}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.seen = seen
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class World:
    """Agents W (may call D), D and E, W's key, and caller C's JWT for W as the gateway forwards it."""

    def __init__(self, keyward: KeywardServer, echo: Echo) -> None:
        admin = keyward.admin
        self.url = keyward.url
        self.w, self.d, self.e = (admin.agent(unique(n), upstream=echo.url) for n in ("w", "d", "e"))
        admin.grant(self.w, may_call=[self.d])
        self.w_key = admin.key(f"agent:{self.w}")[1]
        self.consumer = unique("c")
        admin.call("POST", "/consumers", {"name": self.consumer})
        scopes = [f"agent:{self.w}", f"agent:{self.d}", f"agent:{self.e}", "read:docs"]
        # Two keys of C: the gateway reuses a forwarded JWT per key while it is fresh.
        keys = [admin.key(f"consumer:{self.consumer}", scopes)[1] for _ in range(2)]
        self.c_jwt, self.c_jwt2 = (self._forwarded(k) for k in keys)
        assert claims(self.c_jwt)["aud"] == self.w and self.c_jwt != self.c_jwt2

    def _forwarded(self, key: str) -> str:
        res = httpx.get(f"{self.url}/agents/{self.w}/hello", headers={"authorization": f"Bearer {key}"})
        assert res.status_code == 200, res.text
        return str(res.json()["authorization"]).removeprefix("Bearer ")


@pytest.fixture(scope="module")
def echo() -> Iterator[Echo]:
    e = Echo()
    yield e
    e.close()


@pytest.fixture
def world(keyward: KeywardServer, echo: Echo) -> World:
    return World(keyward, echo)


@pytest.fixture
def kw(world: World) -> Iterator[Keyward]:
    with Keyward.connect(url=world.url, token=world.w_key) as client:
        yield client


def test_exchange_gives_a_token_for_d_acting_for_c(world: World, kw: Keyward) -> None:
    token = exchange(kw, world.c_jwt, world.d, scope=[f"agent:{world.d}", "read:docs"])
    c = claims(token)
    assert c["aud"] == world.d
    assert c["sub"] == f"consumer:{world.consumer}"
    assert c["act"]["sub"] == f"agent:{world.w}"
    assert set(c["scope"].split()) == {f"agent:{world.d}", "read:docs"}
    assert c["exp"] <= claims(world.c_jwt)["exp"]
    assert kw.exchange(world.c_jwt, world.d) != world.c_jwt


def test_an_agent_w_may_not_call_is_invalid_target(world: World, kw: Keyward) -> None:
    with pytest.raises(ExchangeError) as info:
        exchange(kw, world.c_jwt, world.e)
    err = info.value
    assert err.code == "invalid_target" == err.error and err.status == 400
    for secret in (world.c_jwt, world.w_key):
        assert secret not in str(err) and secret not in repr(err)


def test_scope_escalation_is_invalid_scope(world: World, kw: Keyward) -> None:
    with pytest.raises(ExchangeError) as info:
        exchange(kw, world.c_jwt, world.d, scope="admin:everything")
    assert info.value.code == "invalid_scope"


def test_a_bad_subject_token_is_invalid_grant(world: World, kw: Keyward) -> None:
    with pytest.raises(ExchangeError) as info:
        exchange(kw, "not-a-jwt-but-long-enough", world.d)
    assert info.value.code == "invalid_grant"
    assert "not-a-jwt-but-long-enough" not in str(info.value)


def test_empty_arguments_are_refused_before_any_request(kw: Keyward) -> None:
    with pytest.raises(ValueError, match="audience"):
        exchange(kw, "x" * 20, "")


class Counting:
    """A Keyward that counts its token exchanges."""

    def __init__(self, kw: Keyward) -> None:
        self.kw = kw
        self.exchanges = 0

    def request_json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        self.exchanges += path == "/oauth/token"
        return self.kw.request_json(method, path, **kw)

    def agent_token(self) -> str:
        return self.kw.agent_token()


def test_delegated_auth_acts_for_the_caller_through_the_gateway(
    world: World, kw: Keyward, echo: Echo
) -> None:
    counting = Counting(kw)
    auth = DelegatedAuth(counting, world.d)
    with httpx.Client(base_url=f"{world.url}/agents/{world.d}", auth=auth) as client:
        with acting_for(world.c_jwt):
            first = client.get("/run")
            second = client.get("/run")
        with pytest.raises(KeywardError) as info:
            client.get("/run")  # outside any caller
    assert info.value.code == "missing_user_token"
    assert first.status_code == 200 and second.status_code == 200
    forwarded = claims(first.json()["authorization"].removeprefix("Bearer "))
    assert forwarded["aud"] == world.d
    assert forwarded["sub"] == f"consumer:{world.consumer}"
    assert forwarded["act"]["sub"] == f"agent:{world.w}"
    assert counting.exchanges == 1  # the delegated token was cached for the second call
    assert world.c_jwt not in repr(auth)


def test_delegated_auth_caches_per_caller_within_its_bound(world: World, kw: Keyward) -> None:
    current = {"token": world.c_jwt}
    counting = Counting(kw)
    auth = DelegatedAuth(counting, world.d, subject_token=lambda: current["token"], max_cached=1)
    with httpx.Client(base_url=f"{world.url}/agents/{world.d}", auth=auth) as client:
        assert client.get("/a").status_code == 200
        current["token"] = "some-other-callers-token"
        with pytest.raises(ExchangeError):  # refused, and not cached
            client.get("/b")
        current["token"] = world.c_jwt2  # a second caller takes the one place
        assert client.get("/c").status_code == 200
        current["token"] = world.c_jwt
        assert client.get("/d").status_code == 200
        assert client.get("/e").status_code == 200
    assert counting.exchanges == 4


async def test_delegated_auth_with_asyncio(world: World) -> None:
    async with await AsyncKeyward.connect(url=world.url, token=world.w_key) as akw:
        auth = DelegatedAuth(akw, world.d)
        async with httpx.AsyncClient(base_url=f"{world.url}/agents/{world.d}", auth=auth) as client:
            with acting_for(world.c_jwt):
                res = await client.get("/run")
    assert res.status_code == 200
    forwarded = claims(res.json()["authorization"].removeprefix("Bearer "))
    assert forwarded["sub"] == f"consumer:{world.consumer}" and forwarded["act"]["sub"] == f"agent:{world.w}"


async def test_delegated_auth_with_a_sync_client_in_an_async_httpx_client(world: World, kw: Keyward) -> None:
    async with httpx.AsyncClient(
        base_url=f"{world.url}/agents/{world.d}", auth=DelegatedAuth(kw, world.d)
    ) as client:
        with acting_for(world.c_jwt):
            res = await client.get("/run")
    assert res.status_code == 200
