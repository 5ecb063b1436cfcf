"""Virgil-compatible crypto core (sans-I/O): keys, signatures and messages.

Names follow Virgil's SDKs in snake_case. Keys are Ed25519 (converted to X25519 for encryption);
signatures and messages are byte-compatible with virgil-crypto and E3Kit.
"""

from twilio_e2ee.crypto.keys import (
    KeyPair,
    PrivateKey,
    PublicKey,
    export_private_key,
    export_public_key,
    generate_key_pair,
    import_private_key,
    import_public_key,
    key_id,
)
from twilio_e2ee.crypto.signatures import check_signature, sign, verify

__all__ = [
    "KeyPair",
    "PrivateKey",
    "PublicKey",
    "check_signature",
    "export_private_key",
    "export_public_key",
    "generate_key_pair",
    "import_private_key",
    "import_public_key",
    "key_id",
    "sign",
    "verify",
]
