"""A real ``keyward serve`` for the Python SDK's tests: the built server of this repository, on
SQLite in a temporary data dir, started the way a user starts it (no mocks of Keyward)."""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[4]
SERVER_MAIN = REPO / "packages" / "server" / "dist" / "cli" / "main.js"
ADMIN_TOKEN = "py-test-admin-token-0123456789abcdefghij"
MASTER_KEY = base64.b64encode(bytes([7]) * 32).decode()
LISTENING = re.compile(r"listening on (http://\S+)")


class KeywardServer:
    """One ``keyward serve`` process. ``stop()`` and ``start()`` keep the data dir and the port, so a
    test can take Keyward down and bring the same one back."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, config_file: Path | None = None):
        if not SERVER_MAIN.exists():
            raise RuntimeError(f"{SERVER_MAIN} is missing: run `npm run build` at the repository root first")
        self.data_dir = data_dir
        self.extra_env = env or {}
        self.config_file = config_file
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 30) -> KeywardServer:
        args = [
            "node",
            str(SERVER_MAIN),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.config_file is not None:
            args += ["--config", str(self.config_file)]
        env = {
            **os.environ,
            "KEYWARD_ADMIN_TOKEN": ADMIN_TOKEN,
            "KEYWARD_MASTER_KEY": MASTER_KEY,
            "KEYWARD_LOG_LEVEL": "warn",
            **self.extra_env,
        }
        for name in ("KEYWARD_DATABASE_URL", "KEYWARD_REDIS_URL"):
            if name not in self.extra_env:
                env.pop(name, None)
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                m = LISTENING.search(line)
                if m and not ready.is_set():
                    self.url = m.group(1)
                    self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or not self.url or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("keyward serve did not start:\n" + "".join(self.output[-40:]))
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-stream, the way a crash or a lost host looks."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @property
    def admin(self) -> Admin:
        return Admin(self.url)


@contextmanager
def running_keyward(
    env: dict[str, str] | None = None, config_yaml: str | None = None
) -> Iterator[KeywardServer]:
    data_dir = Path(tempfile.mkdtemp(prefix="keyward-py-"))
    config_file = None
    if config_yaml is not None:
        config_file = data_dir / "keyward.yaml"
        config_file.write_text(config_yaml)
    server = KeywardServer(data_dir / "data", env, config_file).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


class Admin:
    """The admin API with the bootstrap token; each call raises on an unexpected status."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)

    def call(
        self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 204)
    ) -> Any:
        res = self.http.request(method, f"/admin/v1{path}", json=body)
        if res.status_code not in expect:
            raise AssertionError(f"{method} {path} → {res.status_code} {res.text}")
        return res.json() if res.content else None

    def agent(self, name: str | None = None, upstream: str = "http://127.0.0.1:9/") -> str:
        name = name or unique("agent")
        self.call("POST", "/agents", {"name": name, "upstream": upstream})
        return name

    def key(self, owner: str, scopes: list[str] | None = None, **extra: Any) -> tuple[str, str]:
        """A new key of ``owner``: (key id, secret)."""
        out = self.call("POST", "/keys", {"owner": owner, "scopes": scopes or [], **extra})
        return out["key"]["id"], out["secret"]

    def set_credential(self, name: str, value: str) -> int:
        return int(self.call("PUT", f"/credentials/{name}", {"value": value})["version"])

    def grant(
        self,
        agent: str,
        read: Sequence[str] = (),
        inject: Sequence[str] = (),
        user_credentials: Sequence[str] = (),
        may_call: Sequence[str] = (),
    ) -> None:
        creds = [{"name": n, "mode": "read"} for n in read] + [{"name": n, "mode": "inject"} for n in inject]
        self.call(
            "PUT",
            f"/agents/{agent}/grants",
            {"credentials": creds, "user_credentials": list(user_credentials), "may_call": list(may_call)},
        )

    def agent_with_credentials(self, values: dict[str, str]) -> tuple[str, str]:
        """A new agent granted ``read`` on new credentials with these values: (agent name, agent key).
        The credential names are used as given: pick unique ones (``unique("openai")``)."""
        agent = self.agent()
        for name, value in values.items():
            self.set_credential(name, value)
        self.grant(agent, read=list(values))
        _, secret = self.key(f"agent:{agent}")
        return agent, secret


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"
