"""A local stand-in for Azure OpenAI and its OAuth token endpoint, for tests and examples.

``AzureStandin`` is one threaded HTTP server on 127.0.0.1 with two routes:

- ``POST /token``: an OAuth 2.0 client-credentials token endpoint (form ``grant_type``,
  ``client_id``, ``client_secret``, ``scope``; or HTTP Basic). Each call issues a new token
  ``tok-<n>-<random>`` valid ``expires_in`` seconds (settable; short-lived tokens make Keyward's
  token provider refresh at a third of their lifetime). Only the newest token is accepted below.
- ``POST /openai/deployments/{deployment}/chat/completions?api-version=…``: answers a chat
  completion echoing the last user message, if ``Authorization: Bearer <the current token>``;
  else 401 in Azure's error shape.

Every request is recorded (``chat_calls``: path, api-version, authorization).

Example::

    with AzureStandin(client_id="app", client_secret="s3cret", expires_in=6) as azure:
        admin.call("PUT", "/credentials/azure", {"type": "oauth2_client_credentials",
                   "token_url": azure.token_url, "client_id": "app", "client_secret": "s3cret"})
        client = AzureOpenAI(azure_endpoint=azure.url, api_version="2024-10-21",
                             azure_ad_token_provider=kw.token_provider("azure"))
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CHAT = re.compile(r"/openai/deployments/([^/]+)/chat/completions")


@dataclass(frozen=True)
class ChatCall:
    deployment: str
    api_version: str | None
    authorization: str | None
    accepted: bool


class AzureStandin:
    """The stand-in server; ``start()``/``stop()`` or use it as a context manager."""

    def __init__(self, client_id: str, client_secret: str, expires_in: int = 3600) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.token_scopes: list[str | None] = []
        self.chat_calls: list[ChatCall] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def current_token(self) -> str | None:
        with self.lock:
            return self.issued[-1] if self.issued else None

    def start(self) -> AzureStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                parts = urlsplit(self.path)
                if parts.path == "/token":
                    standin._token(self, body)
                    return
                m = CHAT.fullmatch(parts.path)
                if m is None:
                    self._send(404, {"error": {"code": "NotFound", "message": "no such route"}})
                    return
                standin._chat(self, unquote(m.group(1)), parse_qs(parts.query), body)

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._handler = Handler
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AzureStandin:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _token(self, h: Any, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = h.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            client_id, client_secret = unquote(client_id), unquote(client_secret)
        if form.get("grant_type") != "client_credentials":
            h._send(400, {"error": "unsupported_grant_type"})
            return
        if client_id != self.client_id or client_secret != self.client_secret:
            h._send(401, {"error": "invalid_client"})
            return
        with self.lock:
            token = f"tok-{len(self.issued) + 1}-{secrets.token_hex(8)}"
            self.issued.append(token)
            self.token_scopes.append(form.get("scope"))
            expires_in = self.expires_in
        h._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in})

    def _chat(self, h: Any, deployment: str, query: dict[str, list[str]], body: bytes) -> None:
        auth = h.headers.get("authorization")
        current = self.current_token
        accepted = current is not None and auth == f"Bearer {current}"
        with self.lock:
            self.chat_calls.append(
                ChatCall(deployment, (query.get("api-version") or [""])[0], auth, accepted)
            )
        if not accepted:
            h._send(401, {"error": {"code": "401", "message": "Access denied due to invalid token"}})
            return
        messages = json.loads(body or b"{}").get("messages") or []
        last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
        h._send(
            200,
            {
                "id": f"chatcmpl-{secrets.token_hex(4)}",
                "object": "chat.completion",
                "created": 0,
                "model": deployment,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"echo: {last}"},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )
