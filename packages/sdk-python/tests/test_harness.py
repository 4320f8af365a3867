"""The harness itself: a real Keyward starts, answers, and comes back on the same port."""

from __future__ import annotations

import httpx

from support.server import KeywardServer


def test_the_real_server_answers_and_restarts_on_its_port(own_keyward: KeywardServer) -> None:
    _agent, key = own_keyward.admin.agent_with_credentials({"harness_cred": "v1"})
    url = own_keyward.url
    res = httpx.get(f"{url}/v1/credentials", headers={"authorization": f"Bearer {key}"})
    assert res.status_code == 200
    assert res.json()["credentials"]["harness_cred"]["value"] == "v1"
    own_keyward.kill()
    try:
        httpx.get(f"{url}/v1/credentials", timeout=2)
        raise AssertionError("the killed server still answered")
    except httpx.ConnectError:
        pass
    own_keyward.start()
    assert own_keyward.url == url
    res = httpx.get(f"{url}/v1/credentials", headers={"authorization": f"Bearer {key}"})
    assert res.json()["credentials"]["harness_cred"]["value"] == "v1"
