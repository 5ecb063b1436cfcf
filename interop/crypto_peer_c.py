"""Virgil's C library (virgil-crypto-lib from PyPI) as an in-process interop peer.

Mirrors what virgil-crypto JS does with the same C code (``VirgilCrypto.ts``): ``encrypt``,
``signThenEncrypt``, ``signAndEncrypt`` (E3Kit ``authEncrypt``) and their decryptors, with keys
passed as DER bytes. Used by the interop tests and the benchmark; imports fail with ImportError
when the package is missing, so callers can skip.
"""

from __future__ import annotations

import hashlib
from typing import Any

from virgil_crypto_lib.foundation import (  # type: ignore[import-untyped]
    Aes256Gcm,
    CtrDrbg,
    KeyProvider,
    RandomPadding,
    RecipientCipher,
    Sha512,
    Signer,
    Verifier,
)

SIGNATURE_KEY = b"VIRGIL-DATA-SIGNATURE"
SIGNER_ID_KEY = b"VIRGIL-DATA-SIGNER-ID"


class VirgilCPeer:
    """Virgil's C library driven the way virgil-crypto JS drives it."""

    def __init__(self) -> None:
        self.rng = CtrDrbg()
        self.rng.setup_defaults()
        self.provider = KeyProvider()
        self.provider.set_random(self.rng)
        self.provider.setup_defaults()

    # keys -------------------------------------------------------------------------------------
    def private_key(self, der: bytes) -> tuple[bytes, Any]:
        """(key id, C private key) from PKCS#8 DER; the id is of the public half."""
        key = self.provider.import_private_key(bytearray(der))
        pub_der = bytes(self.provider.export_public_key(key.extract_public_key()))
        return hashlib.sha512(pub_der).digest()[:8], key

    def public_key(self, der: bytes) -> tuple[bytes, Any]:
        """(key id, C public key) from SPKI DER."""
        return hashlib.sha512(der).digest()[:8], self.provider.import_public_key(bytearray(der))

    def generate(self) -> tuple[bytes, bytes]:
        """A fresh Ed25519 key pair as (PKCS#8 DER, SPKI DER)."""
        from virgil_crypto_lib.foundation import AlgId  # type: ignore[import-untyped]

        key = self.provider.generate_private_key(AlgId.ED25519)
        return (
            bytes(self.provider.export_private_key(key)),
            bytes(self.provider.export_public_key(key.extract_public_key())),
        )

    # writing ----------------------------------------------------------------------------------
    def _cipher(self, recipients: list[tuple[bytes, Any]], padding: bool) -> RecipientCipher:
        cipher = RecipientCipher()
        cipher.set_random(self.rng)
        cipher.set_encryption_cipher(Aes256Gcm())
        if padding:
            pad = RandomPadding()
            pad.set_random(self.rng)
            cipher.set_encryption_padding(pad)
        for key_id, key in recipients:
            cipher.add_key_recipient(bytearray(key_id), key)
        return cipher

    def encrypt(
        self, data: bytes, recipients: list[tuple[bytes, Any]], padding: bool = False
    ) -> bytes:
        cipher = self._cipher(recipients, padding)
        cipher.start_encryption()
        info = bytes(cipher.pack_message_info())
        body = bytes(cipher.process_encryption(bytearray(data))) + bytes(cipher.finish_encryption())
        return info + body

    def sign(self, data: bytes, signer: tuple[bytes, Any]) -> bytes:
        s = Signer()
        s.set_random(self.rng)
        s.set_hash(Sha512())
        s.reset()
        s.append_data(bytearray(data))
        return bytes(s.sign(signer[1]))

    def sign_then_encrypt(
        self,
        data: bytes,
        signer: tuple[bytes, Any],
        recipients: list[tuple[bytes, Any]],
        padding: bool = False,
    ) -> bytes:
        cipher = self._cipher(recipients, padding)
        params = cipher.custom_params()
        params.add_data(bytearray(SIGNATURE_KEY), bytearray(self.sign(data, signer)))
        params.add_data(bytearray(SIGNER_ID_KEY), bytearray(signer[0]))
        cipher.start_encryption()
        info = bytes(cipher.pack_message_info())
        body = bytes(cipher.process_encryption(bytearray(data))) + bytes(cipher.finish_encryption())
        return info + body

    def sign_and_encrypt(
        self,
        data: bytes,
        signer: tuple[bytes, Any],
        recipients: list[tuple[bytes, Any]],
        padding: bool = True,
    ) -> bytes:
        cipher = self._cipher(recipients, padding)
        cipher.set_signer_hash(Sha512())
        cipher.add_signer(bytearray(signer[0]), signer[1])
        cipher.start_signed_encryption(len(data))
        info = bytes(cipher.pack_message_info())
        body = bytes(cipher.process_encryption(bytearray(data))) + bytes(cipher.finish_encryption())
        return info + body + bytes(cipher.pack_message_info_footer())

    # reading ----------------------------------------------------------------------------------
    def _decrypt(self, data: bytes, me: tuple[bytes, Any]) -> tuple[RecipientCipher, bytes]:
        cipher = RecipientCipher()
        cipher.set_random(self.rng)
        cipher.start_decryption_with_key(bytearray(me[0]), me[1], bytearray())
        out = bytes(cipher.process_decryption(bytearray(data))) + bytes(cipher.finish_decryption())
        return cipher, out

    def decrypt(self, data: bytes, me: tuple[bytes, Any]) -> bytes:
        return self._decrypt(data, me)[1]

    def decrypt_and_verify(
        self, data: bytes, me: tuple[bytes, Any], signers: list[tuple[bytes, Any]]
    ) -> bytes:
        cipher, out = self._decrypt(data, me)
        if not cipher.is_data_signed():
            raise ValueError("data not signed")
        info = cipher.signer_infos().item()
        signer_id = bytes(info.signer_id())
        for key_id, key in signers:
            if key_id == signer_id:
                if not cipher.verify_signer_info(info, key):
                    raise ValueError("invalid signature")
                return out
        raise ValueError("signer not found")

    def decrypt_then_verify(
        self, data: bytes, me: tuple[bytes, Any], signers: list[tuple[bytes, Any]]
    ) -> bytes:
        cipher, out = self._decrypt(data, me)
        params = cipher.custom_params()
        signature = bytes(params.find_data(bytearray(SIGNATURE_KEY)))
        signer_id = bytes(params.find_data(bytearray(SIGNER_ID_KEY)))
        for key_id, key in signers:
            if key_id == signer_id:
                v = Verifier()
                v.reset(bytearray(signature))
                v.append_data(bytearray(out))
                if not v.verify(key):
                    raise ValueError("invalid signature")
                return out
        raise ValueError("signer not found")
