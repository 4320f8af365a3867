from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.server import KeywardServer, running_keyward
from test_verify_support import Issuer, JwksServer, jwks_server


@pytest.fixture(scope="session")
def keyward() -> Iterator[KeywardServer]:
    """One Keyward for the tests that do not stop it; each test makes its own agents and names."""
    with running_keyward() as server:
        yield server


@pytest.fixture
def own_keyward() -> Iterator[KeywardServer]:
    """A Keyward of this test alone: it may stop, kill and restart it."""
    with running_keyward() as server:
        yield server


@pytest.fixture
def issuer() -> Issuer:
    """An ES256 issuer of the verifier's tests (own keys, no Keyward)."""
    return Issuer()


@pytest.fixture
def server(issuer: Issuer) -> Iterator[JwksServer]:
    """A local JWKS server publishing ``issuer``'s key."""
    with jwks_server(issuer) as s:
        yield s
