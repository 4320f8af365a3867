"""Security of the verifier: algorithm confusion, key selection, claims, garbage, and what a hostile
or broken JWKS endpoint can cost. Own ES256 keys; a local JWKS server on a real socket."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keyward.errors import KeywardError
from keyward.verify import InvalidTokenError, JwksUnavailableError, Verifier
from test_verify_support import (
    AUDIENCE,
    ISSUER,
    Issuer,
    JwksServer,
    ManualClock,
    assert_no_token_in,
    b64url,
    jwks_server,
)


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def server(issuer: Issuer) -> Iterator[JwksServer]:
    with jwks_server(issuer) as s:
        yield s


def make(server: JwksServer, **options: Any) -> Verifier:
    return Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.url, **options)


def refusal(v: Verifier, token: Any) -> InvalidTokenError:
    with pytest.raises(InvalidTokenError) as info:
        v.verify(token)
    err = info.value
    assert isinstance(err, KeywardError)
    if isinstance(token, str):
        assert_no_token_in(f"{err} {err!r} {err.args}", token)
    return err


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(payload).encode())
    return f"{h}.{p}.{b64url(signature)}"


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    unsigned = forge(header, payload).rsplit(".", 1)[0]
    return f"{unsigned}.{b64url(hmac.new(secret, unsigned.encode(), hashlib.sha256).digest())}"


# -- algorithm confusion ---------------------------------------------------------------------------


def test_alg_none_refused_with_or_without_signature(server: JwksServer, issuer: Issuer) -> None:
    v = make(server)
    header = {"alg": "none", "typ": "at+jwt", "kid": issuer.kid}
    for token in (forge(header, issuer.claims()), forge(header, issuer.claims(), b"x" * 64)):
        assert refusal(v, token).code == "invalid_token"
    assert server.fetches == 0  # refused before any key was looked up


def test_hs256_with_the_public_key_as_secret_refused(server: JwksServer, issuer: Issuer) -> None:
    v = make(server)
    pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = issuer.key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": issuer.kid}
    for secret in (pem, der, json.dumps(issuer.jwk).encode(), json.dumps({"keys": [issuer.jwk]}).encode()):
        err = refusal(v, hs256(header, issuer.claims(), secret))
        assert err.code == "invalid_token"
        assert "algorithm" in str(err)


def test_rsa_and_other_ecdsa_algorithms_refused(server: JwksServer, issuer: Issuer) -> None:
    v = make(server)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p384 = ec.generate_private_key(ec.SECP384R1())
    head = {"kid": issuer.kid, "typ": "at+jwt"}
    for alg, key in (("RS256", rsa_key), ("PS256", rsa_key), ("ES384", p384)):
        token = jwt.encode(issuer.claims(), key, algorithm=alg, headers=head)
        assert refusal(v, token).code == "invalid_token"


def test_es256_token_relabelled_eddsa_refused_even_with_eddsa_enabled(
    server: JwksServer, issuer: Issuer
) -> None:
    v = make(server, algorithms=("ES256", "EdDSA"))
    _, p, s = issuer.mint().split(".")
    relabelled = b64url(json.dumps({"alg": "EdDSA", "typ": "at+jwt", "kid": issuer.kid}).encode())
    err = refusal(v, f"{relabelled}.{p}.{s}")
    assert "does not match its key" in str(err)


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


# -- claims ----------------------------------------------------------------------------------------


class FromNow(int):
    """A time claim given as seconds from the moment the test mints its token."""


@pytest.mark.parametrize(
    ("claims", "code", "words"),
    [
        ({"aud": "another-service"}, "invalid_token", "another audience"),
        ({"aud": ["x", "y"]}, "invalid_token", "another audience"),
        ({"iss": "http://evil.test"}, "invalid_token", "another issuer"),
        ({"iss": ISSUER + "/"}, "invalid_token", "another issuer"),
        ({"exp": FromNow(-60)}, "token_expired", "expired"),  # past the 5 s leeway
        ({"nbf": FromNow(120)}, "invalid_token", "not valid yet"),
        ({"iat": FromNow(120)}, "invalid_token", "in the future"),
        ({"exp": None}, "invalid_token", "exp claim"),
        ({"exp": str(int(time.time()) + 600)}, "invalid_token", "exp claim"),
        ({"iat": None}, "invalid_token", "iat claim"),
        ({"sub": None}, "invalid_token", "sub claim"),
        ({"jti": None}, "invalid_token", "jti claim"),
        ({"client_id": 7}, "invalid_token", "client_id claim"),
        ({"scope": ["read"]}, "invalid_token", "scope claim"),
        ({"act": {"act": {"sub": "x"}}}, "invalid_token", "act claim"),
    ],
)
def test_claims_refused(
    server: JwksServer, issuer: Issuer, claims: dict[str, Any], code: str, words: str
) -> None:
    now = int(time.time())  # when the token is minted, not when the module was collected
    claims = {k: now + v if isinstance(v, FromNow) else v for k, v in claims.items()}
    err = refusal(make(server), issuer.mint(**claims))
    assert err.code == code
    assert words in str(err)


def test_act_chain_nested_beyond_reason_refused(server: JwksServer, issuer: Issuer) -> None:
    act: dict[str, Any] = {"sub": "agent:0"}
    for i in range(1, 40):
        act = {"sub": f"agent:{i}", "act": act}
    assert "nested too deeply" in str(refusal(make(server), issuer.mint(act=act)))


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWT+x", "", None, 1])
def test_wrong_or_missing_typ_refused(server: JwksServer, issuer: Issuer, typ: Any) -> None:
    token = issuer.mint(header={"typ": typ}) if typ is not None else forge_without_typ(issuer)
    assert "typ" in str(refusal(make(server), token))


def forge_without_typ(issuer: Issuer) -> str:
    return jwt.encode(
        issuer.claims(), issuer.key, algorithm="ES256", headers={"kid": issuer.kid, "typ": None}
    )


def test_typ_case_and_media_type_prefix_accepted(server: JwksServer, issuer: Issuer) -> None:
    v = make(server)
    for typ in ("AT+JWT", "application/at+jwt"):
        assert v.verify(issuer.mint(header={"typ": typ})).subject


def test_tampered_payload_refused(server: JwksServer, issuer: Issuer) -> None:
    h, _, s = issuer.mint().split(".")
    p = b64url(json.dumps(issuer.claims(sub="user:admin")).encode())
    assert "signature" in str(refusal(make(server), f"{h}.{p}.{s}"))


def test_missing_kid_refused(server: JwksServer, issuer: Issuer) -> None:
    token = jwt.encode(issuer.claims(), issuer.key, algorithm="ES256", headers={"typ": "at+jwt"})
    assert "no kid" in str(refusal(make(server), token))


# -- garbage ---------------------------------------------------------------------------------------


def test_garbage_huge_and_opaque_credentials_refused(server: JwksServer, issuer: Issuer) -> None:
    v = make(server)
    good = issuer.mint()
    h, p, s = good.split(".")
    garbage: list[Any] = [
        "",
        "x",
        "a.b",
        "a.b.c.d",
        "...",
        f"{h}.{p}",
        f"{h}.{p}.{s}=",
        f"{h}.{p}.{s[:-1]}",
        f"{h}.{p}.{s}AA",
        f"{h}.{p}.{s[:-1]}{'B' if s[-1] != 'B' else 'C'}",
        f"{h}.{p} .{s}",
        "é.é.é",
        "eyJhbGciOiJFUzI1NiJ9.e30." + "A" * 86,
        b64url(b"[1]") + f".{p}.{s}",
        b64url(b"\xff\xfe") + f".{p}.{s}",
        good + "." + good,
        "a" * (16 * 1024 + 1),
        f"{h}.{'A' * (16 * 1024)}.{s}",
        "kwk_" + secrets.token_hex(20),
        "kwr_" + secrets.token_hex(20),
        "kwa_" + secrets.token_hex(20),
        None,
        b"bytes.are.not",
        12,
    ]
    for token in garbage:
        assert refusal(v, token).code == "invalid_token"
    assert "too long" in str(refusal(v, "a" * (16 * 1024 + 1)))
    assert "API key" in str(refusal(v, "kwk_" + secrets.token_hex(20)))


def test_high_s_twin_verifies_as_the_same_token(server: JwksServer, issuer: Issuer) -> None:
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    v = make(server)
    token = issuer.mint()
    h, p, s = token.split(".")
    raw = base64.urlsafe_b64decode(s + "==")
    flipped = raw[:32] + (n - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    twin = f"{h}.{p}.{b64url(flipped)}"
    assert v.verify(token) is v.verify(twin)
    assert len(v._results) == 1


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
