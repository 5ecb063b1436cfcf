"""Virgil's published crypto vectors (tests/data/virgil_compat.json) reproduce."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from twilio_e2ee.crypto import (
    auth_decrypt,
    auth_decrypt_message,
    decrypt,
    decrypt_message,
    decrypt_then_verify,
    decrypt_then_verify_message,
    export_private_key,
    export_public_key,
    import_private_key,
    import_public_key,
    key_id,
    message_recipient_ids,
    sign,
    verify,
)
from twilio_e2ee.errors import SignatureError


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_encrypt_single_recipient(vectors: dict[str, Any]) -> None:
    v = vectors["crypto"]["encrypt_single_recipient"]
    key = import_private_key(v["private_key"])
    msg = decrypt_message(v["cipher_data"], key)
    assert msg.plaintext == b64(v["original_data"])
    assert msg.mode == "encrypt" and msg.signer_key is None and not msg.key_committed
    # This old vector addresses the recipient by the legacy 32-byte SHA-256 id.
    assert message_recipient_ids(v["cipher_data"]) == [
        hashlib.sha256(export_public_key(key.public_key)).digest()
    ]
    assert decrypt(b64(v["cipher_data"]), key) == b64(v["original_data"])


def test_sign_then_encrypt_single_recipient(vectors: dict[str, Any]) -> None:
    v = vectors["crypto"]["sign_and_encrypt_single_recipient"]  # signThenEncrypt, despite the name
    key = import_private_key(v["private_key"])
    msg = decrypt_then_verify_message(v["cipher_data"], key, key.public_key)
    assert msg.plaintext == b64(v["original_data"])
    assert msg.mode == "sign_then_encrypt"
    assert msg.signer_key == key.public_key
    assert decrypt_then_verify(v["cipher_data"], key, [key.public_key]) == b64(v["original_data"])
    # Any other signer key is refused.
    other = import_private_key(vectors["crypto"]["generate_signature"]["private_key"])
    with pytest.raises(SignatureError):
        decrypt_then_verify(v["cipher_data"], key, other.public_key)


def test_auth_encrypt_vector(vectors: dict[str, Any]) -> None:
    v = vectors["crypto"]["auth_encrypt"]
    recipient = import_private_key(v["private_key1"])
    signer = import_public_key(v["public_key"])
    msg = auth_decrypt_message(v["cipher_data"], recipient, signer)
    assert hashlib.sha512(msg.plaintext).digest() == b64(v["data_sha512"])
    assert msg.mode == "auth_encrypt" and msg.signer_key == signer and not msg.padded
    # Several candidates: the one the footer names is picked, whatever the order.
    decoy = import_private_key(v["private_key2"]).public_key
    assert auth_decrypt(v["cipher_data"], recipient, [decoy, signer]) == msg.plaintext
    with pytest.raises(SignatureError):
        auth_decrypt(v["cipher_data"], recipient, decoy)


def test_generate_signature(vectors: dict[str, Any]) -> None:
    v = vectors["crypto"]["generate_signature"]
    key = import_private_key(v["private_key"])
    data = b64(v["original_data"])
    assert sign(data, key) == b64(v["signature"])  # Ed25519 is deterministic: byte for byte
    assert verify(data, v["signature"], key.public_key)
    assert not verify(data + b"!", v["signature"], key.public_key)


def test_seed_key_import_export(vectors: dict[str, Any]) -> None:
    """The key Virgil derived from a seed (CTR-DRBG; checked against the C library in the
    interop tests) imports, exports byte for byte and has the matching public key."""
    v = vectors["crypto"]["generate_ed25519_using_seed"]
    key = import_private_key(v["private_key"])
    assert export_private_key(key) == b64(v["private_key"])
    assert export_public_key(key.public_key) == b64(v["public_key"])
    assert key_id(key.public_key) == hashlib.sha512(b64(v["public_key"])).digest()[:8]


def test_stc34_key_import_export(vectors: dict[str, Any]) -> None:
    sdk = vectors["sdk"]
    key = import_private_key(sdk["STC-34.private_key_base64"])
    assert export_private_key(key) == b64(sdk["STC-34.private_key_base64"])
    pub = import_public_key(sdk["STC-34.public_key_base64"])
    assert pub == key.public_key
    assert export_public_key(pub) == b64(sdk["STC-34.public_key_base64"])


def test_e3kit_encrypt_shared_file(vectors: dict[str, Any]) -> None:
    v = vectors["e3kit"]["encryptSharedFile"]
    msg = auth_decrypt_message(
        v["encryptedData"],
        import_private_key(v["fileKey"]),
        import_public_key(v["senderPublicKey"]),
    )
    assert msg.plaintext == v["originData"].encode()
    assert msg.padded and msg.mode == "auth_encrypt"
