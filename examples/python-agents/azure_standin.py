"""A local stand-in for Microsoft Entra ID's token endpoint and an Azure OpenAI resource, so the
Azure example runs with no internet and no Azure account. Standard library only.

- ``POST /{tenant}/oauth2/v2.0/token`` (client credentials, as Entra: form body ``grant_type``,
  ``client_id``, ``client_secret``, ``scope``) issues a fresh, short-lived token, numbered #1, #2, …
- ``POST /openai/deployments/{deployment}/chat/completions?api-version=…`` (OpenAI's shapes, as the
  ``openai`` client parses them) answers only ``Authorization: Bearer <token>`` with a token it issued
  that has not expired, and says in its answer which token it was: an answer proves Keyward fetched
  the token and the agent got the current one.

It records the last requests it answered (``token_requests``, ``chat_calls``: the number of the
token a call carried, never the token), so a test can tell which token each call used.

Run it by hand (prints the URLs and the made-up client credentials it accepts)::

    python examples/python-agents/azure_standin.py --port 4399 --token-lifetime 60
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

SCOPE = "https://cognitiveservices.azure.com/.default"
TENANT = "example-tenant"
MAX_BODY_BYTES = 64 * 1024
#: Tokens remembered at most (the oldest are forgotten first: a forgotten token is refused).
MAX_TOKENS = 100
#: Requests recorded at most, per endpoint (the oldest are forgotten first).
MAX_RECORDED = 1000
TOKEN_PATH = re.compile(r"^/([A-Za-z0-9._-]{1,64})/oauth2/v2\.0/token$")
CHAT_PATH = re.compile(r"^/openai/deployments/([A-Za-z0-9._-]{1,64})/chat/completions$")
BEARER = re.compile(r"^Bearer (\S+)$")


@dataclass(frozen=True)
class TokenRequest:
    """A token request as the stand-in answered it: the number it issued (None if refused)."""

    number: int | None
    scope: str | None


@dataclass(frozen=True)
class ChatCall:
    """A chat request as the stand-in answered it: ``token_number`` is the number of the token it
    carried when that is one the stand-in issued and still remembers (expired or not), else None."""

    deployment: str
    api_version: str | None
    token_number: int | None
    accepted: bool


class AzureStandin:
    """The stand-in's state: the client it accepts and the tokens it issued (number, expiry).

    Example::

        standin = AzureStandin(client_id, client_secret, token_lifetime=9).start()
        print(standin.token_url, standin.endpoint)
        standin.close()

        with AzureStandin(client_id, client_secret) as standin:  # start() … close()
            ...
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_lifetime: int = 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_lifetime = token_lifetime
        self._clock = clock
        self._tokens: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.issued = 0
        self.token_requests: deque[TokenRequest] = deque(maxlen=MAX_RECORDED)
        self.chat_calls: deque[ChatCall] = deque(maxlen=MAX_RECORDED)
        self._server: ThreadingHTTPServer | None = None

    def __repr__(self) -> str:  # never the client secret
        return f"AzureStandin(client_id={self.client_id!r}, issued={self.issued})"

    # -- the two endpoints, as functions of the request (tested without a socket) -----------------

    def number_of(self, token: str) -> int | None:
        """The number of a token this stand-in issued (while it remembers it), else None."""
        with self._lock:
            entry = self._tokens.get(token)
        return entry[0] if entry is not None else None

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        status, body, number = self._issue(form)
        with self._lock:
            self.token_requests.append(TokenRequest(number, form.get("scope")))
        return status, body

    def _issue(self, form: dict[str, str]) -> tuple[int, dict[str, Any], int | None]:
        if form.get("grant_type") != "client_credentials":
            return (
                400,
                _entra_error("unsupported_grant_type", "AADSTS70003: grant_type must be client_credentials."),
                None,
            )
        if form.get("client_id") != self.client_id or not secrets.compare_digest(
            form.get("client_secret", "").encode(), self._client_secret.encode()
        ):
            return 401, _entra_error("invalid_client", "AADSTS7000215: Invalid client secret provided."), None
        if form.get("scope", SCOPE) != SCOPE:
            return (
                400,
                _entra_error("invalid_scope", f"AADSTS70011: The provided scope is not valid; use {SCOPE}."),
                None,
            )
        token = f"standin-entra-{secrets.token_urlsafe(32)}"
        with self._lock:
            self.issued += 1
            number = self.issued
            self._tokens[token] = (number, self._clock() + self.token_lifetime)
            while len(self._tokens) > MAX_TOKENS:
                self._tokens.popitem(last=False)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }
        return 200, body, number

    def chat(
        self, deployment: str, authorization: str, raw: bytes, api_version: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """The token first (a caller without one learns nothing about its request), then the body."""
        m = BEARER.match(authorization)
        with self._lock:
            entry = self._tokens.get(m.group(1)) if m else None
            accepted = entry is not None and entry[1] > self._clock()
            number = entry[0] if entry is not None else None
            self.chat_calls.append(ChatCall(deployment, api_version, number, accepted))
        if entry is None or not accepted:
            # Azure's words; never the token it got.
            return 401, {
                "error": {
                    "code": "401",
                    "message": "Unauthorized. Access token is missing, invalid, audience "
                    "is incorrect (https://cognitiveservices.azure.com), or have expired.",
                }
            }
        try:
            body = json.loads(raw or b"null")
        except (ValueError, RecursionError):
            return 400, {"error": {"code": "BadRequest", "message": "the body is not JSON"}}
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            return 400, {"error": {"code": "BadRequest", "message": "'messages' is a required property"}}
        said = next(
            (m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"),
            "",
        )
        content = (
            f"(Azure OpenAI stand-in, deployment {deployment}, Entra token #{entry[0]}) "
            f"You said: {said if isinstance(said, str) else ''}"
        )
        return 200, {
            "id": f"chatcmpl-standin-{secrets.token_hex(6)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": deployment,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                }
            ],
            "usage": {
                "prompt_tokens": len(str(said)),
                "completion_tokens": len(content),
                "total_tokens": len(str(said)) + len(content),
            },
        }

    # -- serving ----------------------------------------------------------------------------------

    def start(self, port: int = 0) -> AzureStandin:
        """Listens on 127.0.0.1:port (0: any free port) in a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="azure-standin", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/{TENANT}/oauth2/v2.0/token"

    @property
    def endpoint(self) -> str:
        """What ``AzureOpenAI(azure_endpoint=…)`` takes."""
        return self.url

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AzureStandin:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _entra_error(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description}


def _handler(standin: AzureStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            raw = self._body()
            if raw is None:
                return
            if TOKEN_PATH.match(url.path):
                form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
                self._send(*standin.token(form))
            elif m := CHAT_PATH.match(url.path):
                api_version = parse_qs(url.query).get("api-version")
                if not api_version:
                    self._send(
                        400,
                        {
                            "error": {
                                "code": "MissingApiVersionParameter",
                                "message": "The api-version query parameter (?api-version=) is required "
                                "for all requests.",
                            }
                        },
                    )
                    return
                authorization = self.headers.get("authorization", "")
                self._send(*standin.chat(m.group(1), authorization, raw, api_version[0]))
            else:
                self._send(404, {"error": {"code": "404", "message": "Resource not found"}})

        def _body(self) -> bytes | None:
            length = self.headers.get("content-length", "0")
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                self.close_connection = True
                self._send(
                    413, {"error": {"code": "PayloadTooLarge", "message": f"over {MAX_BODY_BYTES} bytes"}}
                )
                return None
            return self.rfile.read(int(length))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Entra token endpoint + Azure OpenAI stand-in")
    parser.add_argument("--port", type=int, default=4399)
    parser.add_argument("--token-lifetime", type=int, default=3600, help="seconds (default 3600, as Entra)")
    args = parser.parse_args()
    client_id, client_secret = f"standin-{secrets.token_hex(8)}", secrets.token_urlsafe(24)
    standin = AzureStandin(client_id, client_secret, args.token_lifetime).start(args.port)
    # Made up for this run, accepted by this stand-in only: printing them is the point.
    print(
        f"azure-standin listening on {standin.url}\n  token_url: {standin.token_url}\n"
        f"  client_id: {client_id}\n  client_secret: {client_secret}\n  scope: {SCOPE}\n"
        f"  azure_endpoint: {standin.endpoint}",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.close()


if __name__ == "__main__":
    main()
