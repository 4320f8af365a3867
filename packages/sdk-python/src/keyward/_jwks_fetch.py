"""Fetching the issuer's key set: one bounded ``GET`` (sync or asyncio, the same rules) and the
document's usable keys. The cache that decides *when* to fetch is ``_jwks.py``.

The body is read like any of Keyward's answers (``_http.read_bounded``): within 1 MiB decompressed,
within ``timeout`` seconds in all; no redirect is followed; at most 100 keys are looked at. An
unchanged JWK keeps the very same key object across refreshes, so results cached under it stay valid.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import httpx

from ._http import BodyLimit, aread_bounded, read_bounded
from ._jwk import PRIVATE_MEMBERS, JwksKey, import_jwk
from .errors import KeywardError

#: Bounds what a misconfigured or hostile JWKS endpoint can make us buffer or parse.
MAX_JWKS_BYTES = 1024 * 1024
MAX_KEYS = 100
_HEADERS = {"accept": "application/json", "accept-encoding": "gzip, identity"}
_LIMIT = BodyLimit("the JWKS response", "jwks_bytes", MAX_JWKS_BYTES)


class FetchError(Exception):
    """Why a fetch failed, in words safe to show (no body, no credentials)."""


@dataclass(frozen=True, slots=True)
class Entry:
    key: JwksKey
    #: The JWK's public members, canonical: an unchanged JWK keeps its key object across refreshes.
    fingerprint: str


KeySet = dict[str, Entry]


def _fingerprint(jwk: dict[str, Any]) -> str:
    public = sorted((k, v) for k, v in jwk.items() if k not in PRIVATE_MEMBERS)
    return json.dumps(public, sort_keys=True, separators=(",", ":"), default=str)


def parse_key_set(body: bytes, algorithms: Collection[str], previous: KeySet | None) -> KeySet:
    """The usable keys of a JWKS document, by kid (first of a duplicated kid wins)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise FetchError("the JWKS response is not JSON") from None
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise FetchError("the JWKS response has no keys array")
    out: KeySet = {}
    for jwk in keys[:MAX_KEYS]:
        if not isinstance(jwk, dict):
            continue
        kid, use = jwk.get("kid"), jwk.get("use")
        if not isinstance(kid, str) or not kid or kid in out or (use is not None and use != "sig"):
            continue
        fingerprint = _fingerprint(jwk)
        old = previous.get(kid) if previous else None
        if old is not None and old.fingerprint == fingerprint:
            out[kid] = old
            continue
        key = import_jwk(jwk, algorithms)
        if key is not None:
            out[kid] = Entry(key, fingerprint)
    return out


def _answered(res: httpx.Response) -> None:
    if not 200 <= res.status_code < 300:
        raise FetchError(f"the JWKS endpoint answered HTTP {res.status_code}")


@dataclass(frozen=True, slots=True)
class JwksSource:
    """Where and how one issuer's key set is fetched."""

    uri: str
    algorithms: frozenset[str]
    timeout: float
    transport: httpx.BaseTransport | None
    async_transport: httpx.AsyncBaseTransport | None

    def fetch(self, previous: KeySet | None) -> KeySet:
        """The key set now (blocking); raises FetchError, KeywardError or httpx's errors."""
        with (
            httpx.Client(transport=self.transport, timeout=self.timeout, follow_redirects=False) as client,
            client.stream("GET", self.uri, headers=_HEADERS) as res,
        ):
            _answered(res)
            body = read_bounded(res, _LIMIT, self.timeout)
        return parse_key_set(body, self.algorithms, previous)

    async def afetch(self, previous: KeySet | None) -> KeySet:
        """:meth:`fetch` for asyncio (the caller bounds it with ``timeout`` too)."""
        async with (
            httpx.AsyncClient(
                transport=self.async_transport, timeout=self.timeout, follow_redirects=False
            ) as client,
            client.stream("GET", self.uri, headers=_HEADERS) as res,
        ):
            _answered(res)
            body = await aread_bounded(res, _LIMIT, self.timeout)
        return parse_key_set(body, self.algorithms, previous)


def describe(err: BaseException) -> str:
    """Why a fetch failed, safe to put in a message."""
    if isinstance(err, (FetchError, KeywardError)):
        return str(err)
    if isinstance(err, (httpx.TimeoutException, asyncio.TimeoutError, FutureTimeout)):
        return "timed out"
    return type(err).__name__


def display(uri: str) -> str:
    """The URL without credentials or query, as it may appear in a message."""
    url = httpx.URL(uri)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"
