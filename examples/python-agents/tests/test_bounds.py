"""What an outsider controls in the examples' own servers, at its bound: request bodies (the services
and the stand-in), the stand-in's memory of tokens; and the refusals a caller sees without Keyward."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from azure_standin import MAX_BODY_BYTES as STANDIN_MAX_BODY
from azure_standin import MAX_TOKENS, SCOPE, AzureStandin
from research_service import create_research_app
from serving import MAX_BODY_BYTES as SERVICE_MAX_BODY

CLIENT = {
    "grant_type": "client_credentials",
    "client_id": "app",
    "client_secret": "s3cret-canary",
    "scope": SCOPE,
}


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_token(standin: AzureStandin) -> str:
    status, body = standin.token(CLIENT)
    assert status == 200, body
    return str(body["access_token"])


def chat(standin: AzureStandin, token: str) -> tuple[int, dict[str, object]]:
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    return standin.chat("gpt-4o-mini", f"Bearer {token}", body)


def test_standin_answers_with_the_token_it_issued_and_says_which() -> None:
    standin = AzureStandin("app", "s3cret-canary", token_lifetime=60)
    first, second = new_token(standin), new_token(standin)
    status, body = chat(standin, second)
    assert status == 200
    assert "Entra token #2) You said: hi" in str(body["choices"])
    assert chat(standin, first)[0] == 200  # like Entra: an older token is good until it expires


def test_standin_refuses_a_wrong_client_secret_without_echoing_it() -> None:
    standin = AzureStandin("app", "s3cret-canary")
    status, body = standin.token({**CLIENT, "client_secret": "wrong-canary"})
    assert (status, body["error"]) == (401, "invalid_client")
    assert "canary" not in str(body) and "canary" not in repr(standin)


def test_standin_refuses_an_expired_token_at_its_expiry() -> None:
    clock = ManualClock()
    standin = AzureStandin("app", "s3cret-canary", token_lifetime=9, clock=clock)
    token = new_token(standin)
    clock.now += 9 - 0.001
    assert chat(standin, token)[0] == 200
    clock.now += 0.001
    status, body = chat(standin, token)
    assert status == 401
    assert token not in str(body)


def test_standin_remembers_at_most_max_tokens() -> None:
    standin = AzureStandin("app", "s3cret-canary", token_lifetime=3600)
    tokens = [new_token(standin) for _ in range(MAX_TOKENS + 1)]
    assert chat(standin, tokens[0])[0] == 401  # the oldest, forgotten
    assert chat(standin, tokens[1])[0] == 200
    assert chat(standin, tokens[-1])[0] == 200


@pytest.fixture
def served_standin() -> Iterator[AzureStandin]:
    standin = AzureStandin("app", "s3cret-canary").start()
    yield standin
    standin.close()


def test_standin_reads_a_body_of_max_bytes_and_refuses_one_more(served_standin: AzureStandin) -> None:
    url = f"{served_standin.endpoint}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    at_bound = httpx.post(url, content=b" " * STANDIN_MAX_BODY, headers={"authorization": "Bearer nope"})
    assert at_bound.status_code == 401  # read, then refused for its token
    over = httpx.post(url, content=b" " * (STANDIN_MAX_BODY + 1), headers={"authorization": "Bearer nope"})
    assert over.status_code == 413


def test_standin_over_http_issues_a_token_the_chat_accepts(served_standin: AzureStandin) -> None:
    got = httpx.post(served_standin.token_url, data={**CLIENT, "client_id": "app"})
    assert got.status_code == 200
    token = got.json()["access_token"]
    res = httpx.post(
        f"{served_standin.endpoint}/openai/deployments/gpt-4o-mini/chat/completions",
        params={"api-version": "2024-10-21"},
        json={"messages": [{"role": "user", "content": "hello"}]},
        headers={"authorization": f"Bearer {token}"},
    )
    assert res.status_code == 200
    assert res.json()["choices"][0]["message"]["content"].endswith("You said: hello")


@pytest.fixture
def research() -> TestClient:
    # Keyward is never reached: every request here is refused before a token would need its keys.
    return TestClient(create_research_app("http://127.0.0.1:9"))


def test_research_without_a_token_is_refused_in_keywards_error_shape(research: TestClient) -> None:
    res = research.post("/invoke", json={"input": "token exchange"})
    assert res.status_code == 401
    assert res.json()["error"]["code"] == "missing_credentials"


def test_research_refuses_a_keyward_api_key_sent_around_the_gateway(research: TestClient) -> None:
    res = research.post("/invoke", json={"input": "x"}, headers={"authorization": "Bearer kwk_" + "A" * 38})
    assert res.status_code == 401
    assert res.json()["error"]["code"] == "invalid_token"
    assert "kwk_" not in res.text


def test_research_reads_a_body_of_max_bytes_and_refuses_one_more(research: TestClient) -> None:
    assert (
        research.post("/invoke", content=b" " * SERVICE_MAX_BODY).status_code == 401
    )  # past the limit check
    over = research.post("/invoke", content=b" " * (SERVICE_MAX_BODY + 1))
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "payload_too_large"


def test_research_refuses_a_chunked_body_past_the_bound(research: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(SERVICE_MAX_BODY // 1024 + 1):
            yield b" " * 1024

    over = research.post("/invoke", content=chunks(), headers={"authorization": "Bearer x.y.z"})
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "payload_too_large"
