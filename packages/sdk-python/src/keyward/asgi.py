"""Bearer-token authentication for any ASGI app (Starlette, FastAPI, …), and the one place where a
refusal becomes an HTTP answer (``keyward.fastapi`` uses it too; mirrors the Node SDK's
``verify/middleware/shared.ts``).

Answers: 401 ``missing_credentials`` (challenge without an error attribute, RFC 6750 §3.1), 401
``invalid_token`` / ``token_expired`` (``error="invalid_token"``), 403 ``scope_denied``
(``error="insufficient_scope", scope="…"``), 503 ``jwks_unavailable`` (the issuer's keys cannot be
loaded: an outage, never a 401). Bodies are SPEC §4's ``{"error": {"code", "message",
"request_id"}}`` and never contain the token.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from .verify import Claims, InvalidTokenError, JwksUnavailableError, Verifier

__all__ = ["Denial", "KeywardAuthMiddleware", "authenticate"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: A caller's request id is kept for tracing only if it is short, plain, and not a credential.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CREDENTIAL_LIKE = re.compile(r"kw[kar]_|^ey[\w-]+\.ey", re.IGNORECASE)
#: RFC 6750 §3: scope tokens and our realm are printable ASCII without ``"`` and ``\``.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_REALM = re.compile(r"[\x20\x21\x23-\x5B\x5D-\x7E]{1,100}")


@dataclass(frozen=True)
class Denial:
    """A refusal as an HTTP answer: status, headers (lower-case names) and the JSON body."""

    status: int
    headers: dict[str, str]
    code: str
    message: str
    request_id: str

    def body(self) -> bytes:
        error = {"code": self.code, "message": self.message, "request_id": self.request_id}
        return json.dumps({"error": error}).encode()


def check_realm(realm: str) -> str:
    if not isinstance(realm, str) or not _REALM.fullmatch(realm):
        raise ValueError('realm must be 1-100 printable ASCII characters without " or \\')
    return realm


async def authenticate(
    verifier: Verifier,
    authorization: str | None,
    request_id: str | None,
    scopes: Iterable[str] = (),
    realm: str = "keyward",
) -> Claims | Denial:
    """Verifies a request's bearer token and its scopes (all of ``scopes`` are required): the claims,
    or the :class:`Denial` to answer with. Anything but a token or JWKS failure propagates (a bug).

    Example::

        outcome = await authenticate(verifier, headers.get("authorization"), None, ["read"])
        if isinstance(outcome, Denial):
            return JSONResponse(json.loads(outcome.body()), outcome.status, outcome.headers)
    """
    bearer = f'Bearer realm="{realm}"'
    try:
        claims = await verifier.averify_header(authorization)
    except InvalidTokenError as err:
        challenge = bearer if err.code == "missing_credentials" else f'{bearer}, error="invalid_token"'
        return _deny(401, err.code, err.message, request_id, challenge)
    except JwksUnavailableError:
        message = "the token issuer's keys are unavailable; try again shortly"
        return _deny(503, "jwks_unavailable", message, request_id, None)
    required = list(scopes)
    missing = [s for s in required if s not in claims.scopes]
    if missing:
        wanted = " ".join(s for s in required if _SCOPE_TOKEN.fullmatch(s))
        plural = "s" if len(missing) > 1 else ""
        return _deny(
            403,
            "scope_denied",
            f"the access token lacks the required scope{plural}: {', '.join(missing)}",
            request_id,
            f'{bearer}, error="insufficient_scope", scope="{wanted}"',
        )
    return claims


def _deny(status: int, code: str, message: str, incoming: str | None, challenge: str | None) -> Denial:
    plain = incoming is not None and _REQUEST_ID.fullmatch(incoming) and not _CREDENTIAL_LIKE.search(incoming)
    request_id = incoming if plain and incoming is not None else str(uuid.uuid4())
    headers = {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-store",
        "x-request-id": request_id,
    }
    if challenge is not None:
        headers["www-authenticate"] = challenge
    return Denial(status, headers, code, message, request_id)


def _header(scope: Scope, name: bytes) -> str | None:
    """One header's value; absent or repeated counts as absent (a repeated Authorization is ambiguous)."""
    values = [v for k, v in scope.get("headers", ()) if k.lower() == name]
    return values[0].decode("latin-1") if len(values) == 1 else None


class KeywardAuthMiddleware:
    """Pure ASGI middleware: every ``http`` request (except ``exclude_paths``, matched exactly on
    ``scope["path"]``) must carry a valid access token holding all of ``scopes``; the claims are put
    in ``scope["state"]["keyward_claims"]`` (``request.state.keyward_claims`` in Starlette/FastAPI).
    Refusals are answered here (see the module docstring); responses of the app, streaming ones
    included, pass through untouched. ``lifespan`` passes through. A ``websocket`` handshake is held
    to the same rule and refused with close code 1008 (policy violation) when it fails.

    Example::

        from starlette.applications import Starlette
        from keyward.asgi import KeywardAuthMiddleware
        from keyward.verify import Verifier

        verifier = Verifier(issuer="https://keyward.internal", audience="research-agent")
        app = Starlette(routes=routes)
        app.add_middleware(KeywardAuthMiddleware, verifier=verifier, scopes=["read"],
                           exclude_paths=("/health",))
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Verifier,
        scopes: Iterable[str] = (),
        exclude_paths: Iterable[str] = (),
        realm: str = "keyward",
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.scopes = tuple(scopes)
        self.exclude_paths = frozenset(exclude_paths)
        self.realm = check_realm(realm)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope.get("path") in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        outcome = await authenticate(
            self.verifier,
            _header(scope, b"authorization"),
            _header(scope, b"x-request-id"),
            self.scopes,
            self.realm,
        )
        if isinstance(outcome, Claims):
            state = scope.setdefault("state", {})
            state["keyward_claims"] = outcome
            await self.app(scope, receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": outcome.code})
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": outcome.status,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers.items()
                    ],
                }
            )
            await send({"type": "http.response.body", "body": outcome.body()})
