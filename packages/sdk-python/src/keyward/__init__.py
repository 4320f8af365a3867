"""Keyward's Python SDK: credentials for agents, token providers, verification and delegation."""

from __future__ import annotations

from ._limits import Limits
from ._types import Credential
from .aio import AsyncKeyward
from .client import Keyward
from .errors import (
    CredentialExpiredError,
    KeywardError,
    ResponseTooLargeError,
    StaleCredentialError,
    UnknownCredentialError,
)

__all__ = [
    "AsyncKeyward",
    "Credential",
    "CredentialExpiredError",
    "Keyward",
    "KeywardError",
    "Limits",
    "ResponseTooLargeError",
    "StaleCredentialError",
    "UnknownCredentialError",
]

__version__ = "0.1.0"
