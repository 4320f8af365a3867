"""The real ``openai`` package with ``kw.token_provider`` as AzureOpenAI's ``azure_ad_token_provider``:
an ``oauth2_client_credentials`` credential whose token endpoint is the examples' Azure stand-in
issuing short-lived, numbered tokens, so the real Keyward refreshes it while the test runs and the
stand-in's record says which token each call carried."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest

from keyward import Keyward, UnknownCredentialError
from keyward.aio import AsyncKeyward
from support.azure import SCOPE, AzureStandin
from support.server import KeywardServer, unique

CLIENT_SECRET = "azure-client-secret-5Jk8Qw2Zr7"
API_VERSION = "2024-10-21"


def wait_until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.02)


def provider_credential(keyward: KeywardServer, standin: AzureStandin) -> tuple[str, str]:
    """A new agent granted a new token-provider credential: (credential name, agent key)."""
    admin = keyward.admin
    name = unique("azure_token").replace("-", "_")
    admin.call(
        "PUT",
        f"/credentials/{name}",
        {
            "type": "oauth2_client_credentials",
            "token_url": standin.token_url,
            "client_id": "azure-app",
            "client_secret": CLIENT_SECRET,
            "scope": SCOPE,
        },
    )
    agent = admin.agent()
    admin.grant(agent, read=[name])
    return name, admin.key(f"agent:{agent}")[1]


def test_azure_openai_calls_with_each_current_token(keyward: KeywardServer) -> None:
    with AzureStandin("azure-app", CLIENT_SECRET, token_lifetime=6) as standin:
        name, key = provider_credential(keyward, standin)
        with Keyward.connect(url=keyward.url, token=key) as kw:
            client = openai.AzureOpenAI(
                azure_endpoint=standin.url,
                api_version=API_VERSION,
                azure_ad_token_provider=kw.token_provider(name),
                max_retries=0,
            )

            def ask(text: str) -> str | None:
                completion = client.chat.completions.create(
                    model="gpt", messages=[{"role": "user", "content": text}]
                )
                return completion.choices[0].message.content

            assert (ask("before") or "").endswith("You said: before")
            first = standin.chat_calls[-1]
            # Keyward refreshes the 6 s token by itself when a third of its lifetime is left.
            wait_until(lambda: standin.issued >= 2, timeout=20)
            assert (ask("after") or "").endswith("You said: after")
            second = standin.chat_calls[-1]

    assert first.accepted and second.accepted
    assert first.deployment == "gpt" and first.api_version == API_VERSION
    assert first.token_number == 1
    assert second.token_number is not None and second.token_number >= 2  # a refreshed one
    assert [r.scope for r in standin.token_requests][:2] == [SCOPE, SCOPE]


def test_token_credential_reports_keywards_expiry(keyward: KeywardServer) -> None:
    with AzureStandin("azure-app", CLIENT_SECRET, token_lifetime=3600) as standin:
        name, key = provider_credential(keyward, standin)
        before = time.time()
        with Keyward.connect(url=keyward.url, token=key) as kw:
            token, expires_on = kw.token_credential(name).get_token(
                "https://cognitiveservices.azure.com/.default"
            )
    assert standin.number_of(token) == standin.issued  # the newest token the stand-in issued
    assert before + 3500 < expires_on <= time.time() + 3600


async def test_async_azure_openai_with_the_asyncio_client(keyward: KeywardServer) -> None:
    with AzureStandin("azure-app", CLIENT_SECRET, token_lifetime=3600) as standin:
        name, key = provider_credential(keyward, standin)
        kw = await AsyncKeyward.connect(url=keyward.url, token=key)
        try:
            client = openai.AsyncAzureOpenAI(
                azure_endpoint=standin.url,
                api_version=API_VERSION,
                azure_ad_token_provider=kw.token_provider(name),
                max_retries=0,
            )
            completion = await client.chat.completions.create(
                model="gpt", messages=[{"role": "user", "content": "async"}]
            )
            await client.close()
        finally:
            await kw.close()
    assert (completion.choices[0].message.content or "").endswith("You said: async")
    assert standin.chat_calls[-1].accepted
    assert standin.chat_calls[-1].token_number == standin.issued


def test_an_unknown_name_fails_like_get(keyward: KeywardServer) -> None:
    with AzureStandin("azure-app", CLIENT_SECRET) as standin:
        _, key = provider_credential(keyward, standin)
        with Keyward.connect(url=keyward.url, token=key) as kw:
            with pytest.raises(UnknownCredentialError):
                kw.token_provider("not_granted")()
