from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.server import KeywardServer, running_keyward


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
