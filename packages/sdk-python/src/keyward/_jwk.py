"""One issuer key: a JWK read from its public members into a ``cryptography`` key bound to the one
algorithm it may verify (mirrors the Node SDK's ``verify/keyward-jwk.ts``), and the strict base64url
both the keys and the tokens are read with."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: JWK members holding private or secret key material (RFC 7518 §6): never read, never fingerprinted.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey


@dataclass(frozen=True, slots=True, eq=False)
class JwksKey:
    """A public key of the issuer, bound to the one algorithm it may verify."""

    alg: str
    public_key: PublicKey


def b64url_decode(segment: str) -> bytes | None:
    """Strict base64url without padding (RFC 7515 §2): ``None`` for anything but the canonical form,
    so two different strings never decode to the same bytes.

    Example::

        assert b64url_decode("aGk") == b"hi"
        assert b64url_decode("aGl") is None  # non-zero trailing bits
    """
    if len(segment) % 4 == 1 or "=" in segment:
        return None
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") == segment else None


def import_jwk(jwk: dict[str, Any], algorithms: Collection[str]) -> JwksKey | None:
    """One JWK as a usable key, or ``None`` to skip it (a type or algorithm not accepted, a broken
    encoding, a point not on the curve). Only public members are read."""
    kty, crv, alg, x = jwk.get("kty"), jwk.get("crv"), jwk.get("alg"), jwk.get("x")
    if kty == "EC" and crv == "P-256":
        key_alg = "ES256"
    elif kty == "OKP" and crv == "Ed25519":
        key_alg = "EdDSA"
    else:
        return None
    if (alg is not None and alg != key_alg) or key_alg not in algorithms or not isinstance(x, str):
        return None
    x_bytes = b64url_decode(x)
    if x_bytes is None or len(x_bytes) != 32:
        return None
    try:
        if key_alg == "EdDSA":
            return JwksKey("EdDSA", Ed25519PublicKey.from_public_bytes(x_bytes))
        y = jwk.get("y")
        y_bytes = b64url_decode(y) if isinstance(y, str) else None
        if y_bytes is None or len(y_bytes) != 32:
            return None
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x_bytes, "big"), int.from_bytes(y_bytes, "big"), ec.SECP256R1()
        )
        return JwksKey("ES256", numbers.public_key())  # raises for a point not on the curve
    except ValueError:
        return None
