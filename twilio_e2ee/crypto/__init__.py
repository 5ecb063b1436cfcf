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
from twilio_e2ee.crypto.messages import (
    DecryptedMessage,
    MessageMode,
    MessageSummary,
    auth_decrypt,
    auth_decrypt_message,
    auth_encrypt,
    decrypt,
    decrypt_message,
    decrypt_then_verify,
    decrypt_then_verify_message,
    encrypt,
    inspect_message,
    message_recipient_ids,
    sign_then_encrypt,
)
from twilio_e2ee.crypto.signatures import check_signature, sign, verify

__all__ = [
    "DecryptedMessage",
    "KeyPair",
    "MessageMode",
    "MessageSummary",
    "PrivateKey",
    "PublicKey",
    "auth_decrypt",
    "auth_decrypt_message",
    "auth_encrypt",
    "check_signature",
    "decrypt",
    "decrypt_message",
    "decrypt_then_verify",
    "decrypt_then_verify_message",
    "encrypt",
    "export_private_key",
    "export_public_key",
    "generate_key_pair",
    "import_private_key",
    "import_public_key",
    "inspect_message",
    "key_id",
    "message_recipient_ids",
    "sign",
    "sign_then_encrypt",
    "verify",
]
