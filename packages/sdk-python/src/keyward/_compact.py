"""A compact JWS as the verifier reads it: the string's shape, the protected header, the signature's
bytes and whether it holds under a key (Node's ``verify/compact.ts``, ``low-s.ts``). Nothing here
reads the payload's claims: that is ``_claims.py``, and only once the signature holds.

The signature is checked with ``cryptography`` directly (an ES256 signature turned into DER here,
one ``ECDSA(SHA256)`` object for every check), so the verifier's cost is the curve's, not glue.
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Any, NamedTuple, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._jwk import JwksKey, b64url_decode
from ._token_error import invalid

#: Bounds the work spent on garbage; far larger than any token Keyward issues.
MAX_TOKEN_CHARS = 16 * 1024
_FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit", "b64")
_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_OPAQUE_CREDENTIAL = re.compile(r"kw[kra]_")
#: Both algorithms' signatures are 64 bytes: 86 base64url characters, the last holding 4 spare bits.
_SIGNATURE_CHARS = 86
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_N_BYTES = _P256_N.to_bytes(32, "big")
_HALF_N_BYTES = (_P256_N >> 1).to_bytes(32, "big")
_ECDSA = ec.ECDSA(hashes.SHA256())
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: The characters whose 4 low bits are zero: the only canonical last ones of an 86-character segment.
_CANONICAL_LAST_OF_86 = frozenset(_B64URL[::16])
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_raw_decode = json.JSONDecoder().raw_decode


class Parsed(NamedTuple):
    """A token whose shape, header and signature encoding passed; its signature not yet checked."""

    alg: str
    kid: str
    signing_input: bytes
    payload_segment: str
    #: The raw signature (EdDSA) or its DER form (ES256), as ``cryptography`` takes them.
    signature: bytes
    #: The result cache's key: the token, or its low-S twin for a high-S ES256 signature.
    cache_key: str


def b64url_lenient(segment: str) -> bytes:
    """base64url without padding, as the issuer encoded it (only for signed bytes). Raises
    ``binascii.Error`` for an impossible length."""
    return binascii.a2b_base64(segment.encode("ascii").translate(_TO_STANDARD) + b"==")


def json_object(raw: bytes) -> dict[str, Any] | None:
    """A JSON object, or ``None`` (the parser's message would quote the input, a part of a token)."""
    try:
        text = raw.decode("utf-8")
        try:
            value, end = _raw_decode(text)  # json.loads without its whitespace scans: the usual case
        except ValueError:
            end = -1
        if end != len(text):
            value = json.loads(text)  # leading or trailing whitespace, or the error
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _typ_accepted(typ: object) -> bool:
    """RFC 7515 §4.1.9: case-insensitive, ``application/`` optional."""
    return isinstance(typ, str) and typ.lower() in ("at+jwt", "application/at+jwt")


def check_header(segment: str, algorithms: frozenset[str]) -> tuple[str, str]:
    """(alg, kid) of a protected header the verifier accepts; raises InvalidTokenError otherwise."""
    raw = b64url_decode(segment)
    header = json_object(raw) if raw else None
    if header is None:
        invalid("the access token is not a well-formed compact JWS")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        invalid("the access token is signed with an algorithm this verifier does not accept")
    for name in _FORBIDDEN_HEADERS:
        if name in header:
            invalid(f'the access token carries a forbidden "{name}" header')
    if not _typ_accepted(header.get("typ")):
        invalid('the token is not an access token (typ must be "at+jwt")')
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        invalid("the access token header has no kid")
    return alg, kid


def split(token: str) -> tuple[str, str, str]:
    """The three segments of a compact JWS that is not one of Keyward's opaque credentials."""
    if _OPAQUE_CREDENTIAL.match(token):
        invalid("an API key, refresh token or admin token is not an access token")
    match = _COMPACT.fullmatch(token)
    if match is None:
        invalid("the access token is not a well-formed compact JWS")
    header, payload, signature = match.groups()
    return header, payload, signature


def parse(token: str, header: tuple[str, str], segments: tuple[str, str, str]) -> Parsed:
    """The token's parts once its header was accepted: a signature that is exactly 64 bytes in the
    canonical encoding (a trailing-bits variant would be a second string for one token)."""
    alg, kid = header
    header_segment, payload_segment, signature_segment = segments
    if len(signature_segment) != _SIGNATURE_CHARS or signature_segment[-1] not in _CANONICAL_LAST_OF_86:
        invalid("the access token is not a well-formed compact JWS")
    data = token.encode("ascii")  # the alphabet was checked: one byte a character
    split_at = len(header_segment) + 1 + len(payload_segment)
    signing_input = data[:split_at]
    raw = binascii.a2b_base64(data[split_at + 1 :].translate(_TO_STANDARD) + b"==")
    if alg != "ES256":
        return Parsed(alg, kid, signing_input, payload_segment, raw, token)
    r, s = raw[:32], raw[32:]
    cache_key = token
    # Big-endian strings of one length compare as the numbers they hold.
    if _HALF_N_BYTES < s < _N_BYTES:
        # ES256 is malleable: (r, n - s) verifies like (r, s). The low-S form names both.
        low_s = (_P256_N - int.from_bytes(s, "big")).to_bytes(32, "big")
        low = binascii.b2a_base64(r + low_s, newline=False)
        cache_key = token[: split_at + 1] + low.translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")
    return Parsed(alg, kid, signing_input, payload_segment, _der(r, s), cache_key)


def _der(r: bytes, s: bytes) -> bytes:
    """The DER ``SEQUENCE { INTEGER r, INTEGER s }`` cryptography verifies (X9.62), from 32-byte
    big-endian r and s: a table lookup when neither starts with a zero byte (nearly always)."""
    head_r, head_s = _INTEGER_HEAD[r[0]], _INTEGER_HEAD[s[0]]
    if head_r and head_s:
        return _SEQUENCE_HEAD[len(head_r) + len(head_s)] + head_r + r + head_s + s
    r = r.lstrip(b"\x00")
    if not r or r[0] & 0x80:
        r = b"\x00" + r
    s = s.lstrip(b"\x00")
    if not s or s[0] & 0x80:
        s = b"\x00" + s
    return b"\x30%c\x02%c%b\x02%c%b" % (len(r) + len(s) + 4, len(r), r, len(s), s)


#: An INTEGER's tag, length and sign byte for 32 bytes starting with this byte (b"" for zero: strip).
_INTEGER_HEAD = [b""] + [b"\x02\x20" if b < 0x80 else b"\x02\x21\x00" for b in range(1, 256)]
#: The SEQUENCE's tag and length by the two heads' lengths (2 or 3 bytes each, 32 bytes after each).
_SEQUENCE_HEAD = {n: bytes((0x30, n + 64)) for n in (4, 5, 6)}


def signature_holds(parsed: Parsed, key: JwksKey) -> bool:
    """Whether the signature verifies under ``key`` (whose own ``alg`` was matched by the caller)."""
    try:
        if parsed.alg == "ES256":
            cast(ec.EllipticCurvePublicKey, key.public_key).verify(
                parsed.signature, parsed.signing_input, _ECDSA
            )
        else:
            cast(Ed25519PublicKey, key.public_key).verify(parsed.signature, parsed.signing_input)
    except InvalidSignature:
        return False
    return True
