"""Virgil's signature format ("VEDS512"): Ed25519 over SHA-512 of the data, DER-wrapped.

    VirgilSignature ::= SEQUENCE { AlgorithmIdentifier { id-sha512, NULL }, OCTET STRING (64) }

This is plain Ed25519 applied to the 64-byte digest (not Ed25519ph). The DER wrapper is constant,
so it is written and checked as a fixed 19-byte prefix (strict: no alternative encodings).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature

from twilio_e2ee.crypto.keys import PrivateKey, PublicKey, load_bytes
from twilio_e2ee.errors import MalformedInputError, SignatureError, UnusableKeyError

__all__ = ["SIGNATURE_DER_PREFIX", "check_signature", "sign", "sign_digest", "verify"]

SIGNATURE_DER_PREFIX = bytes.fromhex("3051300d060960864801650304020305000440")
SIGNATURE_LENGTH = len(SIGNATURE_DER_PREFIX) + 64


def sign_digest(digest: bytes, private_key: PrivateKey) -> bytes:
    """Raw 64-byte Ed25519 signature over a SHA-512 digest (Virgil signs the digest)."""
    return private_key.ed25519.sign(digest)


def sign(data: bytes, private_key: PrivateKey) -> bytes:
    """Sign `data` the way Virgil does; returns the 83-byte DER signature."""
    if not isinstance(private_key, PrivateKey):
        raise UnusableKeyError(f"sign: expected PrivateKey, got {type(private_key).__name__}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedInputError(f"sign: data must be bytes, got {type(data).__name__}")
    return SIGNATURE_DER_PREFIX + sign_digest(hashlib.sha512(data).digest(), private_key)


def raw_signature(signature: bytes | str) -> bytes:
    """Unwrap Virgil's DER signature (bytes or base64) to the raw 64 bytes, strictly."""
    der = load_bytes(signature, "signature")
    if len(der) != SIGNATURE_LENGTH or not der.startswith(SIGNATURE_DER_PREFIX):
        raise MalformedInputError("signature: not a Virgil Ed25519/SHA-512 DER signature")
    return der[len(SIGNATURE_DER_PREFIX) :]


def check_signature(data: bytes, signature: bytes | str, public_key: PublicKey) -> None:
    """Verify a Virgil DER signature; raise SignatureError (or MalformedInputError) if it fails."""
    if not isinstance(public_key, PublicKey):
        raise UnusableKeyError(f"verify: expected PublicKey, got {type(public_key).__name__}")
    raw = raw_signature(signature)
    try:
        public_key.ed25519.verify(raw, hashlib.sha512(data).digest())
    except InvalidSignature:
        raise SignatureError("signature does not verify under the given public key") from None


def verify(data: bytes, signature: bytes | str, public_key: PublicKey) -> bool:
    """Return True if `signature` is a valid Virgil signature of `data` by `public_key`.

    A malformed signature is simply not valid (False); a wrong key type raises UnusableKeyError.
    Use :func:`check_signature` to get an exception instead of a boolean.
    """
    try:
        check_signature(data, signature, public_key)
    except (SignatureError, MalformedInputError):
        return False
    return True
