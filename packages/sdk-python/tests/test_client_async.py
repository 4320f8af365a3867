"""AsyncKeyward against the real server: the main cases of the sync client."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from client_support import error_of
from keyward import AsyncKeyward, KeywardError, StaleCredentialError, UnknownCredentialError
from support.server import KeywardServer, unique


async def eventually(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def test_connect_get_resolve_rotation_and_close(keyward: KeywardServer) -> None:
    name = unique("openai")
    _, key = keyward.admin.agent_with_credentials({name: "sk-one"})
    kw = await AsyncKeyward.connect(keyward.url, key)
    try:
        assert kw.get(name) == "sk-one"
        assert kw.resolve({"k": ["x ${credentials." + name + "}"]}) == {"k": ["x sk-one"]}
        with pytest.raises(UnknownCredentialError):
            kw.get("__class__")
        seen: list[tuple[str, int | None]] = []
        kw.on_change(lambda n, v: seen.append((n, v)))
        start = time.monotonic()
        keyward.admin.set_credential(name, "sk-two")
        await eventually(lambda: kw.get(name) == "sk-two")
        assert time.monotonic() - start < 1.0
        await eventually(lambda: (name, 2) in seen)
        keyward.admin.set_credential(name, "sk-three")
        await kw.refresh()
        assert kw.get(name) == "sk-three"
        assert (await kw.request_json("GET", "/v1/credentials"))["credentials"][name]["version"] == 3
    finally:
        await kw.close()
    with pytest.raises(KeywardError) as info:
        kw.get(name)
    assert info.value.code == "closed"
    assert all(t.done() for t in kw._tasks)
    await kw.close()


async def test_async_with_and_removal(keyward: KeywardServer) -> None:
    name = unique("openai")
    agent, key = keyward.admin.agent_with_credentials({name: "sk-one"})
    async with AsyncKeyward.connect(keyward.url, lambda: key) as kw:
        assert kw.get(name) == "sk-one"
        keyward.admin.grant(agent, read=[])
        await eventually(lambda: isinstance(error_of(lambda: kw.get(name)), UnknownCredentialError))
    with pytest.raises(KeywardError):
        kw.get(name)


async def test_async_token_callable_and_connect_errors(keyward: KeywardServer) -> None:
    name = unique("openai")
    _, key = keyward.admin.agent_with_credentials({name: "sk-one"})

    async def token() -> str:
        return key

    kw = await AsyncKeyward.connect(keyward.url, token)
    async with kw:
        assert kw.get(name) == "sk-one"
        assert await kw.agent_token() == key
    with pytest.raises(KeywardError) as info:
        await AsyncKeyward.connect(keyward.url, "kwk_wrong")
    assert info.value.status == 401
    with pytest.raises(KeywardError) as info:
        await AsyncKeyward.connect("http://127.0.0.1:9", "kwk_x", request_timeout=2)
    assert info.value.code == "server_unreachable"


async def test_outage_then_stale_then_back(own_keyward: KeywardServer) -> None:
    name = unique("openai")
    _, key = own_keyward.admin.agent_with_credentials({name: "sk-one"})
    async with AsyncKeyward.connect(
        own_keyward.url, key, max_stale=1.5, backoff_base=0.05, backoff_cap=0.3
    ) as kw:
        await eventually(lambda: kw._core.stream_live)
        own_keyward.kill()
        assert kw.get(name) == "sk-one"
        await eventually(lambda: isinstance(error_of(lambda: kw.get(name)), StaleCredentialError))
        await asyncio.to_thread(own_keyward.start)
        await eventually(lambda: kw.get(name) == "sk-one", timeout=15)
