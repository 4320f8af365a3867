"""Security of the verifier's verdicts: algorithm confusion, claims, garbage. Own ES256 keys; a local
JWKS server on a real socket (fixtures ``issuer`` and ``server`` in conftest.py). The key set's own
dangers are test_verify_jwks.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from test_verify_support import (
    ISSUER,
    Issuer,
    JwksServer,
    b64url,
    make,
    refusal,
)


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
