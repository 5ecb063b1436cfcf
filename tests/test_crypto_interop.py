"""Live interop with Virgil's own implementations, both directions.

* Virgil's C library (virgil-crypto-lib from PyPI), in process, driven as virgil-crypto JS drives
  it (`interop/crypto_peer_c.py`).
* virgil-crypto JS (npm, WASM build) under Node.js (`interop/crypto_peer.js`), one Node process
  for the whole module.

For every mode (authEncrypt with and without padding, the legacy signThenEncrypt, plain encrypt)
and for one and for many recipients: what we write (with our key-commitment parameter) opens
with Virgil's library, and what Virgil's library writes opens with ours. A missing peer skips
with the reason.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.nodepeer import run_node
from twilio_e2ee.crypto import (
    KeyPair,
    auth_decrypt,
    auth_decrypt_message,
    auth_encrypt,
    decrypt,
    decrypt_message,
    decrypt_then_verify,
    encrypt,
    export_private_key,
    export_public_key,
    generate_key_pair,
    import_private_key,
    sign_then_encrypt,
)
from twilio_e2ee.errors import E2EEError

pytestmark = pytest.mark.interop

INTEROP = Path(__file__).resolve().parent.parent / "interop"
MODES = ["auth", "auth_unpadded", "sign_then_encrypt", "encrypt"]
COUNTS = [1, 12]
DATA = b"Interop \xf0\x9f\x94\x90 message " * 5

ALICE = generate_key_pair()
PEOPLE = [generate_key_pair() for _ in range(max(COUNTS))]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def recipients(n: int) -> list[KeyPair]:
    return [ALICE, *PEOPLE[:n]]  # E3Kit adds the sender


def write_ours(mode: str, n: int) -> bytes:
    keys = [p.public_key for p in recipients(n)]
    if mode == "auth":
        return auth_encrypt(DATA, ALICE.private_key, keys)
    if mode == "auth_unpadded":
        return auth_encrypt(DATA, ALICE.private_key, keys, padding=False)
    if mode == "sign_then_encrypt":
        return sign_then_encrypt(DATA, ALICE.private_key, keys)
    return encrypt(DATA, keys, padding=True)


def read_ours(mode: str, message: bytes, reader: KeyPair) -> bytes:
    if mode.startswith("auth"):
        result = auth_decrypt_message(
            message, reader.private_key, [reader.public_key, ALICE.public_key]
        )
        assert result.signer_key == ALICE.public_key
        return result.plaintext
    if mode == "sign_then_encrypt":
        return decrypt_then_verify(message, reader.private_key, ALICE.public_key)
    assert decrypt_message(message, reader.private_key).mode == "encrypt"
    return decrypt(message, reader.private_key)


# --- Virgil's C library --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cpeer() -> Any:
    pytest.importorskip(
        "virgil_crypto_lib.foundation", reason="virgil-crypto-lib (PyPI) not installed"
    )
    sys.path.insert(0, str(INTEROP))
    try:
        from crypto_peer_c import VirgilCPeer
    finally:
        sys.path.remove(str(INTEROP))
    return VirgilCPeer()


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("mode", MODES)
def test_c_library_reads_ours(cpeer: Any, mode: str, n: int) -> None:
    message = write_ours(mode, n)
    signer = [cpeer.public_key(export_public_key(ALICE.public_key))]
    for reader in (PEOPLE[0], PEOPLE[n - 1], ALICE):
        me = cpeer.private_key(export_private_key(reader.private_key))
        if mode.startswith("auth"):
            out = cpeer.decrypt_and_verify(message, me, signer)
        elif mode == "sign_then_encrypt":
            out = cpeer.decrypt_then_verify(message, me, signer)
        else:
            out = cpeer.decrypt(message, me)
        assert out == DATA


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("mode", MODES)
def test_we_read_c_library(cpeer: Any, mode: str, n: int) -> None:
    keys = [cpeer.public_key(export_public_key(p.public_key)) for p in recipients(n)]
    signer = cpeer.private_key(export_private_key(ALICE.private_key))
    if mode.startswith("auth"):
        message = cpeer.sign_and_encrypt(DATA, signer, keys, padding=mode == "auth")
    elif mode == "sign_then_encrypt":
        message = cpeer.sign_then_encrypt(DATA, signer, keys, padding=True)
    else:
        message = cpeer.encrypt(DATA, keys, padding=False)
    for reader in (PEOPLE[0], PEOPLE[n - 1], ALICE):
        assert read_ours(mode, message, reader) == DATA


def test_c_library_message_every_flip_rejected(cpeer: Any) -> None:
    """Virgil's own decryptor accepts ~6% of single-byte flips of its messages (research
    addendum); ours rejects every flip of a C-library message with a typed error."""
    keys = [cpeer.public_key(export_public_key(PEOPLE[0].public_key))]
    message = cpeer.sign_and_encrypt(
        b"hi there!", cpeer.private_key(export_private_key(ALICE.private_key)), keys
    )
    accepted = []
    for i in range(len(message)):
        tampered = bytearray(message)
        tampered[i] ^= 0x01
        try:
            out = auth_decrypt(bytes(tampered), PEOPLE[0].private_key, ALICE.public_key)
        except E2EEError:
            continue
        assert out == b"hi there!"
        accepted.append(i)
    assert accepted == []


def test_c_library_seed_key_vector(cpeer: Any, vectors: dict[str, Any]) -> None:
    """Virgil's seed → key derivation (CTR-DRBG over the seed) gives the vector's key, which we
    import and export byte for byte."""
    from virgil_crypto_lib.foundation import AlgId, KeyMaterialRng, KeyProvider

    v = vectors["crypto"]["generate_ed25519_using_seed"]
    rng = KeyMaterialRng()
    rng.reset_key_material(bytearray(base64.b64decode(v["seed"])))
    provider = KeyProvider()
    provider.set_random(rng)
    provider.setup_defaults()
    key = provider.generate_private_key(AlgId.ED25519)
    der = bytes(provider.export_private_key(key))
    assert b64(der) == v["private_key"]
    ours = import_private_key(der)
    assert b64(export_public_key(ours.public_key)) == v["public_key"]
    assert b64(bytes(provider.export_public_key(key.extract_public_key()))) == v["public_key"]


# --- virgil-crypto JS ---------------------------------------------------------------------------

JS_WRITE = {
    "auth": ("signAndEncrypt", True),
    "auth_unpadded": ("signAndEncrypt", False),
    "sign_then_encrypt": ("signThenEncrypt", False),
    "encrypt": ("encrypt", True),
}
JS_READ = {
    "auth": "decryptAndVerify",
    "auth_unpadded": "decryptAndVerify",
    "sign_then_encrypt": "decryptThenVerify",
    "encrypt": "decrypt",
}


@pytest.fixture(scope="module")
def js() -> dict[tuple[str, str, int], Any]:
    """One Node.js run: JS decrypts everything we wrote and writes a message of every kind."""
    ops: list[dict[str, Any]] = []
    keys: list[tuple[str, str, int]] = []
    signer = b64(export_public_key(ALICE.public_key))
    for mode in MODES:
        for n in COUNTS:
            message = b64(write_ours(mode, n))
            for reader in (PEOPLE[0], PEOPLE[n - 1]):
                ops.append(
                    {
                        "op": JS_READ[mode],
                        "data": message,
                        "private": b64(export_private_key(reader.private_key)),
                        "signers": [signer],
                    }
                )
                keys.append(("js_reads", mode, n))
            op, padding = JS_WRITE[mode]
            ops.append(
                {
                    "op": op,
                    "data": b64(DATA),
                    "signer": b64(export_private_key(ALICE.private_key)),
                    "recipients": [b64(export_public_key(p.public_key)) for p in recipients(n)],
                    "padding": padding,
                }
            )
            keys.append(("js_writes", mode, n))
    results = run_node("crypto_peer.js", {"ops": ops}, package="virgil-crypto")["results"]
    out: dict[tuple[str, str, int], Any] = {}
    for key, result in zip(keys, results, strict=True):
        out.setdefault(key, []).append(result)
    return out


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("mode", MODES)
def test_js_reads_ours(js: dict[tuple[str, str, int], Any], mode: str, n: int) -> None:
    for result in js[("js_reads", mode, n)]:
        assert "error" not in result, result
        assert base64.b64decode(result["data"]) == DATA


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("mode", MODES)
def test_we_read_js(js: dict[tuple[str, str, int], Any], mode: str, n: int) -> None:
    (result,) = js[("js_writes", mode, n)]
    message = base64.b64decode(result["data"])
    for reader in (PEOPLE[0], PEOPLE[n - 1], ALICE):
        assert read_ours(mode, message, reader) == DATA
