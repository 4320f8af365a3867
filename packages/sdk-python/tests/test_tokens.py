"""Token providers and Azure-style credentials (keyward.tokens) over a fake source with a manual
clock: when the server is asked, and that an expired token is never handed out."""

from __future__ import annotations

import asyncio

import pytest

from keyward import CredentialExpiredError, KeywardError
from keyward._types import Credential
from keyward.tokens import (
    AccessToken,
    async_token_credential,
    async_token_provider,
    token_credential,
    token_provider,
)

T0 = 1_800_000_000.0


class FakeSource:
    """A held credential, a manual clock, and a refresh that installs what the test queued."""

    def __init__(self, value: str, expires_at: float | None) -> None:
        self.entry = Credential("azure", value, 1, expires_at)
        self.clock = T0
        self.refreshes = 0
        self.next: Credential | None = None
        self.fail: Exception | None = None

    def credential(self, name: str) -> Credential:
        assert name == "azure"
        return self.entry

    def refresh(self) -> None:
        self.refreshes += 1
        if self.fail is not None:
            raise self.fail
        if self.next is not None:
            self.entry, self.next = self.next, None

    def now(self) -> float:
        return self.clock


class AsyncFakeSource(FakeSource):
    async def refresh(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        FakeSource.refresh(self)


def test_a_fresh_token_is_handed_out_without_asking_the_server() -> None:
    src = FakeSource("tok-1", T0 + 3600)
    provide = token_provider(src, "azure")
    assert provide() == "tok-1"
    assert provide() == "tok-1"
    assert src.refreshes == 0


def test_near_expiry_the_server_is_asked_at_most_once_a_second() -> None:
    src = FakeSource("tok-1", T0 + 20)  # inside the 30 s margin
    provide = token_provider(src, "azure")
    assert provide() == "tok-1"
    assert src.refreshes == 1
    src.clock += 0.5
    assert provide() == "tok-1"
    assert src.refreshes == 1
    src.clock += 0.6
    src.next = Credential("azure", "tok-2", 2, T0 + 3600)
    assert provide() == "tok-2"
    assert src.refreshes == 2


def test_an_expired_token_is_never_handed_out() -> None:
    src = FakeSource("tok-1", T0 + 20)
    provide = token_provider(src, "azure")
    provide()  # claims the refresh slot
    src.clock = T0 + 20  # expired: asks again at once, whatever the interval
    src.fail = KeywardError("server_unreachable", "cannot reach Keyward")
    with pytest.raises(CredentialExpiredError) as info:
        provide()
    assert info.value.code == "credential_expired"
    assert "tok-1" not in str(info.value) and "tok-1" not in repr(info.value)
    assert isinstance(info.value.__cause__, KeywardError)
    assert src.refreshes == 2


def test_a_failed_refresh_keeps_a_token_that_is_still_valid() -> None:
    src = FakeSource("tok-1", T0 + 10)
    src.fail = KeywardError("server_unreachable", "down")
    assert token_provider(src, "azure")() == "tok-1"


def test_the_expired_token_is_replaced_when_the_server_has_a_new_one() -> None:
    src = FakeSource("tok-1", T0 - 1)
    src.next = Credential("azure", "tok-2", 2, T0 + 3600)
    assert token_provider(src, "azure")() == "tok-2"


def test_token_credential_has_azure_cores_shape() -> None:
    src = FakeSource("tok-1", T0 + 3600.7)
    with token_credential(src, "azure") as credential:
        at = credential.get_token(
            "https://cognitiveservices.azure.com/.default", tenant_id="t", enable_cae=True
        )
    assert isinstance(at, AccessToken)
    token, expires_on = at
    assert (token, expires_on) == ("tok-1", int(T0 + 3600))
    assert at.token == "tok-1" and isinstance(at.expires_on, int)
    assert "tok-1" not in repr(at)
    info = credential.get_token_info("scope")
    assert (info.token, info.expires_on, info.token_type) == ("tok-1", int(T0 + 3600), "Bearer")
    assert "tok-1" not in repr(info) and "tok-1" not in repr(credential)


def test_a_static_value_is_reported_valid_for_five_minutes() -> None:
    src = FakeSource("static-key", None)
    assert token_credential(src, "azure").get_token().expires_on == int(T0 + 300)
    assert src.refreshes == 0


def test_token_credential_raises_credential_expired() -> None:
    src = FakeSource("tok-1", T0 - 5)
    with pytest.raises(CredentialExpiredError):
        token_credential(src, "azure").get_token("scope")


async def test_async_provider_and_credential() -> None:
    src = AsyncFakeSource("tok-1", T0 + 20)
    src.next = Credential("azure", "tok-2", 2, T0 + 3600)
    assert await async_token_provider(src, "azure")() == "tok-2"
    async with async_token_credential(src, "azure") as credential:
        at = await credential.get_token("scope")
    assert at == AccessToken("tok-2", int(T0 + 3600))
    assert (await credential.get_token_info()).token == "tok-2"
    src.entry = Credential("azure", "tok-3", 3, T0 - 1)
    with pytest.raises(CredentialExpiredError):
        await async_token_provider(src, "azure")()
