"""Helpers of the verifier's tests (no tests here): an issuer with its own ES256 keys, and a local
JWKS server on a real socket that counts its fetches and can misbehave on purpose."""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keyward.errors import KeywardError
from keyward.verify import InvalidTokenError, Verifier

ISSUER = "http://issuer.test"
AUDIENCE = "svc"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Issuer:
    """An ES256 signing key with a kid, and tokens signed by it."""

    def __init__(self, kid: str | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = kid or b64url(secrets.token_bytes(32))
        nums = self.key.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(nums.x.to_bytes(32, "big")),
            "y": b64url(nums.y.to_bytes(32, "big")),
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
        }

    def claims(self, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": ISSUER,
            "sub": "consumer:billing",
            "aud": AUDIENCE,
            "exp": now + 600,
            "iat": now,
            "jti": secrets.token_hex(8),
            "client_id": "key_1",
            "scope": "read write",
        }
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    def mint(self, header: dict[str, Any] | None = None, **claims: Any) -> str:
        head = {"kid": self.kid, "typ": "at+jwt", **(header or {})}
        head = {k: v for k, v in head.items() if v is not None}
        return jwt.encode(self.claims(**claims), self.key, algorithm="ES256", headers=head)


class JwksServer:
    """A JWKS endpoint on 127.0.0.1. ``mode`` picks the answer: ``ok`` (``self.keys``), ``garbage``,
    ``status500``, ``huge`` (64 MiB streamed, no length), ``declared`` (a 10 MiB content-length),
    ``gzip_bomb``, ``endless`` (a byte a second, forever), ``redirect`` (to ``/other``)."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.mode = "ok"
        self.fetches = 0
        self.paths: list[str] = []
        self.bytes_sent = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.paths.append(self.path)
                    if self.path == "/jwks.json":
                        server.fetches += 1
                try:
                    server.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/jwks.json"
        threading.Thread(target=self.http.serve_forever, args=(0.02,), daemon=True).start()

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        if mode == "redirect" and h.path == "/jwks.json":
            h.send_response(302)
            h.send_header("location", "/other")
            h.send_header("content-length", "0")
            h.end_headers()
            return
        if mode == "ok" or h.path != "/jwks.json":
            self._send(h, 200, json.dumps({"keys": self.keys}).encode())
        elif mode == "garbage":
            self._send(h, 200, b"\x00<html>not json")
        elif mode == "status500":
            self._send(h, 500, b"{}")
        elif mode == "declared":
            h.send_response(200)
            h.send_header("content-length", str(10 * 1024 * 1024))
            h.end_headers()
            h.wfile.write(b"{")
        elif mode == "gzip_bomb":
            self._send(h, 200, gzip.compress(b"[" * (64 * 1024 * 1024)), {"content-encoding": "gzip"})
        elif mode in ("huge", "endless"):
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.end_headers()
            h.wfile.write(b'{"keys": [')
            chunk = b" " * 65536 if mode == "huge" else b" "
            for _ in range(1024 if mode == "huge" else 3600):
                h.wfile.write(chunk)
                h.wfile.flush()
                with self.lock:
                    self.bytes_sent += len(chunk)
                if mode == "endless":
                    time.sleep(0.5)

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@contextmanager
def jwks_server(*issuers: Issuer) -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys = [i.jwk for i in issuers]
    try:
        yield server
    finally:
        server.close()


def token_parts(token: str) -> list[str]:
    return [p for p in token.split(".") if len(p) >= 8]


def assert_scope_denied(res: Any, scope: str, mentions: str) -> None:
    """A 403 of the middleware for a token without the scopes ``scope`` (RFC 6750 §3.1)."""
    assert res.status_code == 403
    challenge = f'Bearer realm="keyward", error="insufficient_scope", scope="{scope}"'
    assert res.headers["www-authenticate"] == challenge
    assert res.json()["error"]["code"] == "scope_denied"
    assert mentions in res.json()["error"]["message"]


def assert_no_token_in(text: str, token: str) -> None:
    for part in token_parts(token):
        assert part not in text, "a refusal quotes the token"


class ManualClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(server: JwksServer, **options: Any) -> Verifier:
    """A verifier of ``ISSUER`` for ``AUDIENCE`` whose keys ``server`` publishes."""
    return Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.url, **options)


def refusal(v: Verifier, token: Any) -> InvalidTokenError:
    """The refusal of ``token``, checked not to quote it."""
    with pytest.raises(InvalidTokenError) as info:
        v.verify(token)
    err = info.value
    assert isinstance(err, KeywardError)
    if isinstance(token, str):
        assert_no_token_in(f"{err} {err!r} {err.args}", token)
    return err
