"""Closing a client delivers the tool-call audit records still queued: an agent that answers a
request and shuts down at once loses no record."""

from __future__ import annotations

from keyward import AsyncKeyward, Keyward
from keyward.tools import acting_for, with_user_credentials
from support.server import KeywardServer
from test_tools import Users


def test_close_delivers_the_queued_audit_records(keyward: KeywardServer) -> None:
    users = Users(keyward)
    kw = Keyward.connect(url=users.url, token=users.agent_key)

    def report_on_close(credentials: dict[str, str]) -> str:
        return "ok" if credentials[users.n1] else "no"

    tool = with_user_credentials(kw, report_on_close, names=[users.n1])
    with acting_for(users.token):
        assert [tool() for _ in range(5)] == ["ok"] * 5
    kw.close()  # no flush: close must drain the queue itself
    assert len(users.audit("report_on_close")) == 5


async def test_async_close_delivers_the_queued_audit_records(keyward: KeywardServer) -> None:
    users = Users(keyward)
    kw = await AsyncKeyward.connect(url=users.url, token=users.agent_key)

    async def areport_on_close(credentials: dict[str, str]) -> str:
        return "ok" if credentials[users.n1] else "no"

    tool = kw.with_user_credentials(areport_on_close, names=[users.n1])
    with acting_for(users.token):
        assert [await tool() for _ in range(3)] == ["ok"] * 3
    await kw.close()
    assert len(users.audit("areport_on_close")) == 3
