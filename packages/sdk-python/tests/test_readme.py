"""The README's Python blocks marked ``<!-- readme-test: NAME -->`` run as written, against a real
Keyward, with only the environment the README tells the reader to set."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from support.server import KeywardServer

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- readme-test: (\S+) -->\n```python\n(.*?)```", re.DOTALL)


def readme_block(name: str) -> str:
    blocks = dict(BLOCK.findall(README.read_text()))
    assert name in blocks, f"README.md has no python block marked readme-test: {name}"
    return str(blocks[name])


@pytest.fixture
def readme_env(own_keyward: KeywardServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeywardServer]:
    """The quick start's set-up: agent `research` reading `openai_key`, its key in the environment."""
    admin = own_keyward.admin
    admin.agent("research")
    admin.set_credential("openai_key", "sk-readme-canary-1")
    admin.grant("research", read=["openai_key"])
    _, key = admin.key("agent:research", ["agent:research"])
    monkeypatch.setenv("KEYWARD_URL", own_keyward.url)
    monkeypatch.setenv("KEYWARD_AGENT_KEY", key)
    yield own_keyward


def test_connect_block_reads_and_resolves(readme_env: KeywardServer) -> None:
    scope: dict[str, Any] = {}
    exec(compile(readme_block("connect"), "README.md", "exec"), scope)  # noqa: S102
    assert scope["api_key"] == "sk-readme-canary-1"
    assert scope["headers"] == {"Authorization": "Bearer sk-readme-canary-1"}


class _Uvicorn:
    """The README's FastAPI app served for real, so the gateway can forward to it."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_fastapi_block_verifies_what_the_gateway_forwards(readme_env: KeywardServer) -> None:
    scope: dict[str, Any] = {}
    exec(compile(readme_block("fastapi"), "README.md", "exec"), scope)  # noqa: S102
    admin = readme_env.admin
    with _Uvicorn(scope["app"]) as upstream:
        admin.call("PATCH", "/agents/research", {"upstream": upstream})
        admin.call("POST", "/consumers", {"name": "finance"})
        _, key = admin.key("consumer:finance", ["agent:research"])
        res = httpx.post(f"{readme_env.url}/agents/research/invoke", headers={"x-api-key": key}, timeout=10)
        assert res.status_code == 200, res.text
        assert res.json() == {"output": "researched for consumer:finance", "via": []}

        # Straight at the agent, around the gateway: no token, and a forged one, are refused.
        direct = httpx.post(f"{upstream}/invoke", timeout=10)
        assert direct.status_code == 401
        assert direct.headers["www-authenticate"].startswith("Bearer")
        forged = httpx.post(f"{upstream}/invoke", headers={"authorization": f"Bearer {key}"}, timeout=10)
        assert forged.status_code == 401
        assert forged.json()["error"]["code"] == "invalid_token"
    assert os.environ["KEYWARD_URL"] == readme_env.url
