"""Tools acting for users (keyward.tools) against the real server: the user's token (a user key
exchanged for a token with aud = the agent), each injection mode, redaction of every encoding from
results and exceptions, typed refusals, audit records read back from the admin API, and a canary
value searched for in everything a caller, a log or the audit log could see."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import traceback
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyward import Keyward
from keyward._tool_audit import AuditQueue
from keyward.aio import AsyncKeyward
from keyward.tools import (
    ToolError,
    ToolTimeoutError,
    UserCredentialError,
    acting_for,
    audit_queue_of,
    with_user_credentials,
)
from support.server import KeywardServer, unique

CANARY = "canary-Zq8x7Lm2Pn4Rt6Vw/+ok"
OTHER = "second-secret-9Hf3Kd7Xw2"


def encodings(secret: str) -> list[str]:
    """Every form the canary may leave a tool in (written here independently of the redactor)."""
    raw = secret.encode()
    b64, b64url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    return [secret, b64, b64.rstrip("="), b64url, b64url.rstrip("="), raw.hex(), raw.hex().upper(),
            urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret), json.dumps(secret)[1:-1],
            secret.replace("/", "\\/"), "".join(f"\\u{ord(c):04x}" for c in secret)]  # fmt: skip


def leaked(text: str) -> list[str]:
    return [form for form in encodings(CANARY) + encodings(OTHER) if form in text]


class Users:
    """An agent granted two user credentials, a user who set both, and that user's token for the agent."""

    def __init__(self, keyward: KeywardServer) -> None:
        admin = keyward.admin
        self.url = keyward.url
        self.admin = admin
        self.agent = admin.agent()
        self.n1, self.n2, self.unset = (unique(n).replace("-", "_") for n in ("cloud_ak", "ticket", "unset"))
        admin.grant(self.agent, user_credentials=[self.n1, self.n2, self.unset])
        self.agent_key = admin.key(f"agent:{self.agent}")[1]
        self.user = unique("u")
        admin.call("PUT", f"/users/{self.user}/credentials/{self.n1}", {"value": CANARY})
        admin.call("PUT", f"/users/{self.user}/credentials/{self.n2}", {"value": OTHER})
        self.token = self.user_token(self.user)

    def user_token(self, user: str) -> str:
        key = self.admin.key(f"user:{user}", [f"agent:{self.agent}"])[1]
        got = httpx.post(f"{self.url}/v1/auth/token", json={"api_key": key}).json()
        res = httpx.post(f"{self.url}/oauth/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": got["access_token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "audience": self.agent})  # fmt: skip
        assert res.status_code == 200, res.text
        return str(res.json()["access_token"])

    def audit(self, tool: str) -> list[dict[str, Any]]:
        events = self.admin.call("GET", "/audit?action=tool.call&limit=200")["events"]
        return [e for e in events if (e.get("details") or {}).get("tool") == tool]


@pytest.fixture
def users(keyward: KeywardServer) -> Users:
    return Users(keyward)


@pytest.fixture
def kw(users: Users) -> Iterator[Keyward]:
    with Keyward.connect(url=users.url, token=users.agent_key) as client:
        yield client


def everything(result: Any) -> str:
    return json.dumps(result, default=repr) + repr(result)


def test_params_injects_the_users_values_and_redacts_every_encoding(users: Users, kw: Keyward) -> None:
    seen: dict[str, Any] = {}

    def cloud_report(region: str, credentials: dict[str, str]) -> dict[str, Any]:
        seen.update(credentials)
        value = credentials[users.n1]
        return {"region": region, "forms": encodings(value), "bytes": value.encode(),
                "nested": [{"k": f"Basic {base64.b64encode(b'user:' + value.encode()).decode()}"}],
                value: "as a key", "other": credentials[users.n2]}  # fmt: skip

    tool = with_user_credentials(kw, cloud_report, names=[users.n1, users.n2])
    assert "credentials" not in str(__import__("inspect").signature(tool))
    with acting_for(users.token):
        result = tool(region="eu")
    assert seen == {users.n1: CANARY, users.n2: OTHER}
    assert result["region"] == "eu"
    assert set(result["forms"]) == {"[redacted]"}
    assert result["bytes"] == b"[redacted]" and "[redacted]" in result
    assert result["nested"][0]["k"].startswith("Basic ")
    assert leaked(everything(result)) == []
    queue = audit_queue_of(kw)
    assert isinstance(queue, AuditQueue)
    queue.flush(10)
    [event] = users.audit("cloud_report")
    assert event["target"] == f"user:{users.user}" and event["outcome"] == "success"
    assert event["actor"] == f"agent:{users.agent}"
    assert event["details"]["redactions"] >= len(encodings(CANARY)) + 4
    assert leaked(json.dumps(event)) == []


def test_call_as_passes_the_token_explicitly_and_model_planted_fields_are_dropped(
    users: Users, kw: Keyward
) -> None:
    def show(**kwargs: Any) -> str:
        return json.dumps(sorted(kwargs)) + " " + str(kwargs["credentials"][users.n1])

    tool = with_user_credentials(kw, show, names=[users.n1])
    out = tool.call_as(users.token, q="x", credentials={users.n1: "evil"}, user="user:other", user_id="other")
    assert out == '["credentials", "q"] [redacted]'


def test_env_mode_hands_a_fresh_environment_and_never_touches_os_environ(users: Users, kw: Keyward) -> None:
    before = dict(os.environ)

    def run_cli(env: dict[str, str]) -> dict[str, str]:
        assert env[users.n1.upper()] == CANARY and env["TICKETS"] == OTHER
        return {k: v for k, v in env.items() if k in (users.n1.upper(), "TICKETS", "PATH")}

    tool = with_user_credentials(
        kw, run_cli, names=[users.n1, users.n2], inject="env", env={"TICKETS": users.n2}
    )
    with acting_for(users.token):
        out = tool()
    assert out == {users.n1.upper(): "[redacted]", "TICKETS": "[redacted]", "PATH": os.environ["PATH"]}
    assert dict(os.environ) == before


def test_headers_mode_fills_the_default_template(users: Users, kw: Keyward) -> None:
    def call_api(headers: dict[str, str]) -> bool:
        return headers == {"Authorization": f"Bearer {CANARY}"}

    with acting_for(users.token):
        assert with_user_credentials(kw, call_api, names=[users.n1], inject="headers")() is True


def test_an_exception_comes_back_redacted_without_its_chain(users: Users, kw: Keyward, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)

    def failing(credentials: dict[str, str]) -> None:
        value = credentials[users.n1]
        try:
            raise KeyError(value)
        except KeyError as inner:
            raise httpx.HTTPError(
                f"401 for key {value} ({base64.b64encode(value.encode()).decode()})"
            ) from inner

    tool = with_user_credentials(kw, failing, names=[users.n1])
    with acting_for(users.token), pytest.raises(ToolError) as info:
        tool()
    err = info.value
    assert err.type_name == "HTTPError"
    assert str(err) == "HTTPError: 401 for key [redacted] ([redacted])"
    assert err.__cause__ is None and err.__context__ is None
    text = "".join(traceback.format_exception(err)) + repr(err) + str(err.args)
    logging.getLogger("test").exception("tool failed", exc_info=err)
    assert leaked(text) == [] and leaked(caplog.text) == []
    queue = audit_queue_of(kw)
    assert isinstance(queue, AuditQueue)
    queue.flush(10)
    [event] = users.audit("failing")
    assert event["outcome"] == "failure" and event["details"]["redactions"] == 2


def test_refusals_are_typed_and_the_tool_does_not_run(users: Users, kw: Keyward) -> None:
    ran: list[str] = []

    def tool(credentials: dict[str, str]) -> None:
        ran.append("ran")

    def code(names: list[str], token: str | None) -> str:
        wrapped = with_user_credentials(kw, tool, names=names)
        with pytest.raises(UserCredentialError) as info:
            wrapped() if token is None else wrapped.call_as(token)
        assert token is None or token not in str(info.value) + repr(info.value)
        return info.value.code

    assert code([users.n1], None) == "missing_user_token"
    assert code([users.n1, users.unset], users.token) == "credential_not_found"
    assert code(["never_granted"], users.token) == "credential_not_granted"
    assert code([users.n1], users.token[:-4] + "AAAA") == "invalid_token"
    assert ran == []


async def test_async_tool_with_the_asyncio_client_and_its_timeout(users: Users) -> None:
    async with await AsyncKeyward.connect(url=users.url, token=users.agent_key) as akw:

        async def lookup(q: str, credentials: dict[str, str]) -> str:
            await asyncio.sleep(0)
            return f"{q}:{credentials[users.n1]}"

        async def stuck(credentials: dict[str, str]) -> None:
            await asyncio.Event().wait()

        def sync_tool(credentials: dict[str, str]) -> str:
            return credentials[users.n2]

        with acting_for(users.token):
            assert await with_user_credentials(akw, lookup, names=[users.n1])(q="a") == "a:[redacted]"
            # A sync tool under an asyncio client runs in a thread and becomes awaitable.
            assert await with_user_credentials(akw, sync_tool, names=[users.n2])() == "[redacted]"
            with pytest.raises(ToolTimeoutError) as info:
                await with_user_credentials(akw, stuck, names=[users.n1], timeout=0.2)()
        assert info.value.code == "tool_timeout"
        await audit_queue_of(akw).aflush()  # type: ignore[union-attr]
    assert [e["outcome"] for e in users.audit("stuck")] == ["failure"]


def test_a_langchain_tool_takes_its_user_from_the_run_config(users: Users, kw: Keyward) -> None:
    from langchain_core.tools import tool

    from keyward.tools import UserToken

    @tool
    def list_functions(region: str, credentials: dict[str, str]) -> str:
        """Lists the user's cloud functions in a region."""
        return f"{region}: key {credentials[users.n1]}"

    wrapped = with_user_credentials(kw, list_functions, names=[users.n1])
    assert wrapped.name == "list_functions"
    assert set(wrapped.tool_call_schema.model_json_schema()["properties"]) == {"region"}
    out = wrapped.invoke({"region": "eu"}, config={"configurable": {"user_token": users.token}})
    assert out == "eu: key [redacted]"
    out = wrapped.invoke({"region": "us"}, config={"configurable": {"user_token": UserToken(users.token)}})
    assert out == "us: key [redacted]"
    with pytest.raises(UserCredentialError):
        wrapped.invoke({"region": "eu"})
    with acting_for(users.token):
        assert wrapped.invoke({"region": "ap"}) == "ap: key [redacted]"
