"""The sync client against the real server: connect, get, resolve, rotation, removal, close."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from client_support import PathTransport, wait_until
from keyward import Credential, Keyward, KeywardError, StaleCredentialError, UnknownCredentialError
from support.server import KeywardServer, unique


@pytest.fixture
def agent(keyward: KeywardServer) -> Iterator[tuple[str, str, str]]:
    """(agent, key, credential name) with the credential at "sk-one"."""
    name = unique("openai")
    agent, key = keyward.admin.agent_with_credentials({name: "sk-one"})
    yield agent, key, name


def test_connect_loads_everything_in_one_request_and_get_answers_from_memory(
    keyward: KeywardServer, agent: tuple[str, str, str]
) -> None:
    _, key, name = agent
    transport = PathTransport()
    with Keyward.connect(url=keyward.url, token=key, transport=transport) as kw:
        # connect returned after exactly one GET /v1/credentials (the stream comes after, in the background)
        assert transport.statuses("/v1/credentials")[:1] == [200]
        before = len(transport.log)
        assert kw.get(name) == "sk-one"
        for _ in range(1000):
            kw.get(name)
        assert len(transport.log) == before or all(p != "/v1/credentials" for p, _ in transport.log[before:])
        entry = kw.credential(name)
        assert isinstance(entry, Credential)
        assert (entry.name, entry.value, entry.version, entry.expires_at) == (name, "sk-one", 1, None)
        assert "sk-one" not in repr(entry) and "sk-one" not in repr(kw)
        assert abs(kw.now() - time.time()) < 5


def test_resolve_replaces_placeholders_inside_strings_and_keeps_keys(
    keyward: KeywardServer, agent: tuple[str, str, str]
) -> None:
    _, key, name = agent
    with Keyward.connect(keyward.url, key) as kw:
        ph = "${credentials." + name + "}"
        obj = {"url": f"https://u:{ph}@h/", ph: [ph, (1, ph)], "n": 3}
        out = kw.resolve(obj)
        assert out == {"url": "https://u:sk-one@h/", ph: ["sk-one", (1, "sk-one")], "n": 3}
        assert obj["url"] == f"https://u:{ph}@h/"  # a copy: the input is untouched
        with pytest.raises(UnknownCredentialError):
            kw.resolve({"a": "${credentials.nope}"})


@pytest.mark.parametrize(
    "name",
    ["__class__", "__init__", "__dict__", "get", "_set", "", "x" * 100_000, "nope\n\x1b[31m", "sk-one"],
)
def test_names_not_readable_are_unknown_never_attribute_access(
    keyward: KeywardServer, agent: tuple[str, str, str], name: str
) -> None:
    _, key, _ = agent
    with Keyward.connect(keyward.url, key) as kw:
        with pytest.raises(UnknownCredentialError) as info:
            kw.get(name)
        assert isinstance(info.value, KeyError) and info.value.code == "unknown_credential"
        assert len(str(info.value)) < 200  # a huge name is cut in the message
        assert "\x1b" not in str(info.value)
        with pytest.raises(UnknownCredentialError):
            kw.credential(name)


@pytest.mark.parametrize("name", [None, 1, b"openai", ["a"], {"a": 1}])
def test_non_str_names_are_a_type_error(
    keyward: KeywardServer, agent: tuple[str, str, str], name: object
) -> None:
    _, key, _ = agent
    with Keyward.connect(keyward.url, key) as kw, pytest.raises(TypeError):
        kw.get(name)  # type: ignore[arg-type]


def test_rotation_reaches_get_within_a_second_and_on_change_fires(
    keyward: KeywardServer, agent: tuple[str, str, str]
) -> None:
    _, key, name = agent
    with Keyward.connect(keyward.url, key) as kw:
        seen: list[tuple[str, int | None]] = []
        kw.on_change(lambda n, v: seen.append((n, v)))
        for i, value in enumerate(["sk-two", "sk-three"], start=2):
            start = time.monotonic()
            version = keyward.admin.set_credential(name, value)
            wait_until(lambda value=value: kw.get(name) == value, timeout=10)  # type: ignore[misc]
            assert time.monotonic() - start < 1.0
            assert version == i
            wait_until(lambda i=i: (name, i) in seen)  # type: ignore[misc]


def test_revoking_the_grant_removes_the_credential(
    keyward: KeywardServer, agent: tuple[str, str, str]
) -> None:
    agent_name, key, name = agent
    other = unique("kept")
    keyward.admin.set_credential(other, "kept-value")
    keyward.admin.grant(agent_name, read=[name, other])
    with Keyward.connect(keyward.url, key) as kw:
        seen: list[tuple[str, int | None]] = []
        kw.on_change(lambda n, v: seen.append((n, v)))
        assert kw.get(other) == "kept-value"
        keyward.admin.grant(agent_name, read=[other])
        wait_until(lambda: (name, None) in seen)
        with pytest.raises(UnknownCredentialError):
            kw.get(name)
        assert kw.get(other) == "kept-value"


def test_on_change_unsubscribe_and_a_raising_callback_does_not_stop_the_loop(
    keyward: KeywardServer, agent: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, key, name = agent
    with Keyward.connect(keyward.url, key) as kw:
        seen: list[int | None] = []
        dropped: list[int | None] = []

        def boom(n: str, v: int | None) -> None:
            raise RuntimeError(f"callback saw {kw.get(n)}")  # a message holding the value: never logged

        kw.on_change(boom)
        unsubscribe = kw.on_change(lambda n, v: dropped.append(v))
        kw.on_change(lambda n, v: seen.append(v))
        unsubscribe()
        keyward.admin.set_credential(name, "sk-secret-two")
        wait_until(lambda: 2 in seen)
        keyward.admin.set_credential(name, "sk-secret-three")
        wait_until(lambda: 3 in seen)  # the loop went on after the raising callback
        assert dropped == []
        assert "RuntimeError" in caplog.text
        assert "sk-secret" not in caplog.text


def test_refresh_fetches_now(keyward: KeywardServer, agent: tuple[str, str, str]) -> None:
    _, key, name = agent
    with Keyward.connect(keyward.url, key, transport=PathTransport(hidden=("/events",))) as kw:
        keyward.admin.set_credential(name, "sk-two")  # no stream, poll interval 15 s: only refresh sees it
        kw.refresh()
        assert kw.get(name) == "sk-two"


def test_close_stops_everything_and_get_raises_closed(
    keyward: KeywardServer, agent: tuple[str, str, str]
) -> None:
    _, key, name = agent
    kw = Keyward.connect(keyward.url, key)
    wait_until(lambda: kw._core.stream_live)
    start = time.monotonic()
    kw.close()
    assert time.monotonic() - start < 2  # the blocked stream read was interrupted, not waited out
    assert all(not t.is_alive() for t in kw._threads)
    for call in (lambda: kw.get(name), kw.refresh, lambda: kw.request_json("GET", "/v1/credentials")):
        with pytest.raises(KeywardError) as info:
            call()
        assert info.value.code == "closed"
    kw.close()  # twice is fine


def test_connect_with_a_wrong_key_raises_the_servers_code(keyward: KeywardServer) -> None:
    with pytest.raises(KeywardError) as info:
        Keyward.connect(keyward.url, "kwk_CANARYwrongkey0123456789abcdefghijklmnop")
    assert info.value.status == 401
    assert info.value.code in ("invalid_key", "unauthorized", "invalid_token")
    assert "CANARY" not in str(info.value) and "CANARY" not in repr(info.value)


def test_connect_to_nothing_raises_server_unreachable() -> None:
    with pytest.raises(KeywardError) as info:
        Keyward.connect("http://127.0.0.1:9", "kwk_x", request_timeout=2)
    assert info.value.code == "server_unreachable"


def test_token_may_be_a_callable_called_before_each_request(
    keyward: KeywardServer, agent: tuple[str, str, str]
) -> None:
    _, key, name = agent
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return key

    with Keyward.connect(keyward.url, token) as kw:
        assert kw.get(name) == "sk-one"
        wait_until(lambda: len(calls) >= 3)  # connect, stream, catch-up
        assert kw.agent_token() == key


def test_request_json_as_the_agent(keyward: KeywardServer, agent: tuple[str, str, str]) -> None:
    _, key, name = agent
    with Keyward.connect(keyward.url, key) as kw:
        body = kw.request_json("GET", "/v1/credentials")
        assert body["credentials"][name]["value"] == "sk-one"
        with pytest.raises(KeywardError) as info:
            kw.request_json("GET", "/v1/credentials", auth_header="")
        assert info.value.status == 401


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_stale": 0.5}, ValueError),
        ({"max_stale": "1"}, TypeError),
        ({"max_stale": float("nan")}, ValueError),
        ({"poll_interval": 0}, ValueError),
        ({"heartbeat_timeout": -1}, ValueError),
        ({"backoff_cap": True}, TypeError),
        ({"request_timeout": float("inf")}, ValueError),
        ({"limits": {"credentials_bytes": 1}}, TypeError),
        ({"transport": object()}, TypeError),
    ],
)
def test_options_are_validated_before_any_request(options: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        Keyward.connect("http://127.0.0.1:9", "kwk_x", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "token"), [("ftp://x", "k"), ("not a url", "k"), ("http://x", ""), ("http://x", 3)]
)
def test_url_and_token_are_validated(url: str, token: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        Keyward.connect(url, token)  # type: ignore[arg-type]


def test_stale_is_computed_from_the_injected_clock(
    keyward: KeywardServer, agent: tuple[str, str, str]
) -> None:
    _, key, name = agent

    class Clock:
        t = 1_000_000.0

        def time(self) -> float:
            return self.t

        def monotonic(self) -> float:
            return self.t

    clock = Clock()
    with Keyward.connect(keyward.url, key, max_stale=60, _clock=clock) as kw:
        wait_until(lambda: kw._core.stream_live)
        clock.t += 59.9
        assert kw.get(name) == "sk-one"  # contacts only move the deadline later
        clock.t += 3600  # far past max_stale with no contact at the new time yet
        with pytest.raises(StaleCredentialError) as info:
            kw.get(name)
        assert info.value.code == "stale_credentials"
        with pytest.raises(StaleCredentialError):
            kw.resolve("${credentials." + name + "}")
