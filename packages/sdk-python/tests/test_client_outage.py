"""Keyward going away and coming back, and a server without the event stream (polling)."""

from __future__ import annotations

import time

import pytest

from client_support import PathTransport, error_of, wait_until
from keyward import Keyward, KeywardError, StaleCredentialError
from support.server import KeywardServer, unique


def test_server_down_last_good_values_then_stale_then_fresh_again_without_action(
    own_keyward: KeywardServer,
) -> None:
    name = unique("openai")
    _, key = own_keyward.admin.agent_with_credentials({name: "sk-one"})
    errors: list[KeywardError] = []
    kw = Keyward.connect(own_keyward.url, key, max_stale=2.0, backoff_base=0.05, backoff_cap=0.3)
    try:
        kw.on_error(errors.append)
        wait_until(lambda: kw._core.stream_live)
        own_keyward.kill()
        killed = time.monotonic()
        wait_until(lambda: any(e.code == "server_unreachable" for e in errors))
        assert kw.get(name) == "sk-one"  # last good value, from memory
        wait_until(lambda: isinstance(error_of(lambda: kw.get(name)), StaleCredentialError), timeout=10)
        assert time.monotonic() - killed >= 1.0  # not before max_stale after the last contact (minus slack)
        err = error_of(lambda: kw.get(name))
        assert isinstance(err, StaleCredentialError) and err.code == "stale_credentials"
        # Reported to listeners too, by the fetch worker when it wakes at the same deadline.
        wait_until(lambda: any(isinstance(e, StaleCredentialError) for e in errors), timeout=10)

        own_keyward.start()
        own_keyward.admin.set_credential(name, "sk-two")
        wait_until(lambda: kw.get(name) == "sk-two", timeout=15)  # no action taken: it came back by itself
    finally:
        kw.close()


def test_no_stream_falls_back_to_polling_with_if_none_match(keyward: KeywardServer) -> None:
    name = unique("openai")
    _, key = keyward.admin.agent_with_credentials({name: "sk-one"})
    transport = PathTransport(hidden=("/v1/credentials/events",), status=404)
    with Keyward.connect(keyward.url, key, poll_interval=0.1, transport=transport) as kw:
        wait_until(lambda: transport.statuses("/v1/credentials").count(304) >= 2)  # nothing changed: 304s
        keyward.admin.set_credential(name, "sk-two")
        wait_until(lambda: kw.get(name) == "sk-two", timeout=5)
        assert not kw._core.stream_live


@pytest.mark.parametrize("status", [500, 401])
def test_a_failing_stream_still_lets_polling_deliver(keyward: KeywardServer, status: int) -> None:
    name = unique("openai")
    _, key = keyward.admin.agent_with_credentials({name: "sk-one"})
    transport = PathTransport(hidden=("/v1/credentials/events",), status=status)
    errors: list[KeywardError] = []
    with Keyward.connect(keyward.url, key, poll_interval=0.1, backoff_base=0.05, transport=transport) as kw:
        kw.on_error(errors.append)
        keyward.admin.set_credential(name, "sk-two")
        wait_until(lambda: kw.get(name) == "sk-two", timeout=5)
        wait_until(lambda: any(e.status == status for e in errors))
