"""Security of the verifier's key set: which keys are selected and fetched (never what a token names),
what a flood of unknown kids costs, and what a hostile or broken JWKS endpoint can cost. Own ES256
keys; a local JWKS server on a real socket (fixtures ``issuer`` and ``server`` in conftest.py)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from typing import Any

import pytest

from keyward.verify import InvalidTokenError, JwksUnavailableError
from test_verify_support import (
    Issuer,
    JwksServer,
    ManualClock,
    assert_no_token_in,
    b64url,
    make,
    refusal,
)

# -- key selection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c"])
def test_key_naming_headers_refused_and_never_followed(server: JwksServer, issuer: Issuer, name: str) -> None:
    v = make(server)
    attacker = Issuer(kid=issuer.kid)
    evil = server.url.replace("/jwks.json", "/evil.json")
    value: Any = {"jku": evil, "x5u": evil, "jwk": attacker.jwk, "x5c": ["MIIB"]}[name]
    for signer in (issuer, attacker):  # a published key, and the attacker's own
        err = refusal(v, signer.mint(header={name: value}))
        assert err.code == "invalid_token"
        assert f'"{name}" header' in str(err)
    assert "/evil.json" not in server.paths


def test_unknown_kid_flood_costs_a_bounded_number_of_fetches(server: JwksServer, issuer: Issuer) -> None:
    clock = ManualClock()
    v = make(server, clock=clock)
    v.verify(issuer.mint())
    assert server.fetches == 1
    stranger = Issuer()
    tokens = [stranger.mint(header={"kid": b64url(secrets.token_bytes(32))}) for _ in range(200)]
    errors: list[str] = []

    def worker(chunk: list[str]) -> None:
        for t in chunk:
            try:
                v.verify(t)
            except InvalidTokenError as err:
                errors.append(err.code)

    threads = [threading.Thread(target=worker, args=(tokens[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["invalid_token"] * 200
    assert server.fetches == 2  # one refetch for the whole flood
    clock.advance(31)  # after the cooldown: one more, however many tokens
    for token in tokens[:50]:
        refusal(v, token)
    assert server.fetches == 3


async def test_unknown_kid_flood_async_shares_one_fetch(server: JwksServer, issuer: Issuer) -> None:
    v = make(server)
    await v.averify(issuer.mint())
    stranger = Issuer()
    tokens = [stranger.mint(header={"kid": b64url(secrets.token_bytes(32))}) for _ in range(100)]
    results = await asyncio.gather(*(v.averify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, InvalidTokenError) for r in results)
    assert server.fetches == 2


def test_kid_shaped_like_a_path_or_url_never_refetches(server: JwksServer, issuer: Issuer) -> None:
    v = make(server)
    v.verify(issuer.mint())
    for kid in ("../../etc/passwd", "http://evil.test/k", "a b", "x" * 200):
        refusal(v, issuer.mint(header={"kid": kid}))
    assert server.fetches == 1
    assert all(p == "/jwks.json" for p in server.paths)


def test_a_rotated_signing_key_is_picked_up(server: JwksServer, issuer: Issuer) -> None:
    v = make(server)
    v.verify(issuer.mint())
    rotated = Issuer()
    server.keys = [issuer.jwk, rotated.jwk]
    assert v.verify(rotated.mint()).subject == "consumer:billing"
    assert server.fetches == 2
    v.verify(issuer.mint())  # the old key still verifies, from memory
    assert server.fetches == 2


def test_a_key_no_longer_published_voids_cached_results(server: JwksServer, issuer: Issuer) -> None:
    clock = ManualClock()
    v = make(server, clock=clock, jwks_refresh_interval=60)
    token = issuer.mint()
    v.verify(token)
    replacement = Issuer()
    server.keys = [replacement.jwk]
    clock.advance(61)
    v.verify(token)  # stale: starts a background refresh, still answers from memory
    deadline = time.monotonic() + 10
    while server.fetches < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            v.verify(token)
        except InvalidTokenError as err:
            assert "does not publish" in str(err)
            break
        time.sleep(0.01)
    else:
        pytest.fail("a token of a withdrawn key kept verifying")


def test_jwks_entries_of_other_use_type_or_private_halves_ignored(server: JwksServer) -> None:
    enc, okp, rsa_kid, good = Issuer(), Issuer(), Issuer(), Issuer()
    server.keys = [
        {**enc.jwk, "use": "enc"},
        {**okp.jwk, "kty": "OKP", "crv": "Ed25519"},
        {**rsa_kid.jwk, "alg": "RS256"},
        {**good.jwk, "d": b64url(b"\x01" * 32)},
    ]
    v = make(server)
    for bad in (enc, okp, rsa_kid):
        assert "does not publish" in str(refusal(v, bad.mint()))
    assert v.verify(good.mint()).subject == "consumer:billing"


def test_at_most_100_keys_are_read(server: JwksServer) -> None:
    issuers = [Issuer() for _ in range(101)]
    server.keys = [i.jwk for i in issuers]
    v = make(server)
    assert v.verify(issuers[99].mint()).subject
    refusal(v, issuers[100].mint())


# -- a hostile or broken JWKS endpoint -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["garbage", "status500", "declared", "gzip_bomb", "redirect"])
def test_broken_jwks_is_an_outage_not_a_verdict(server: JwksServer, issuer: Issuer, mode: str) -> None:
    server.mode = mode
    token = issuer.mint()
    with pytest.raises(JwksUnavailableError) as info:
        make(server).verify(token)
    assert info.value.code == "jwks_unavailable"
    assert_no_token_in(str(info.value), token)
    assert "/other" not in server.paths


def test_huge_jwks_body_is_cut_at_1_mib(server: JwksServer, issuer: Issuer) -> None:
    server.mode = "huge"
    with pytest.raises(JwksUnavailableError) as info:
        make(server).verify(issuer.mint())
    assert "too large" in str(info.value)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server notices the closed socket
        before = server.bytes_sent
        time.sleep(0.2)
        if server.bytes_sent == before:
            break
    assert server.bytes_sent < 16 * 1024 * 1024  # of 64 MiB offered


def test_endless_jwks_body_times_out(server: JwksServer, issuer: Issuer) -> None:
    server.mode = "endless"
    started = time.monotonic()
    with pytest.raises(JwksUnavailableError):
        make(server, timeout=1).verify(issuer.mint())
    assert time.monotonic() - started < 15


async def test_endless_jwks_body_times_out_async(server: JwksServer, issuer: Issuer) -> None:
    server.mode = "endless"
    started = time.monotonic()
    with pytest.raises(JwksUnavailableError):
        await make(server, timeout=1).averify(issuer.mint())
    assert time.monotonic() - started < 15


def test_first_load_failures_are_paced(server: JwksServer, issuer: Issuer) -> None:
    clock = ManualClock()
    server.mode = "status500"
    v = make(server, clock=clock)
    for _ in range(50):
        with pytest.raises(JwksUnavailableError):
            v.verify(issuer.mint())
    assert server.fetches == 1
    clock.advance(1.5)
    server.mode = "ok"
    assert v.verify(issuer.mint()).subject
    assert server.fetches == 2


def test_failed_refetch_keeps_the_keys_held(server: JwksServer, issuer: Issuer) -> None:
    v = make(server)
    v.verify(issuer.mint())
    server.mode = "garbage"
    refusal(v, Issuer().mint())  # unknown kid: refetch fails, the token is simply unknown
    assert v.verify(issuer.mint()).subject
