"""The password-backup blob (sans-I/O): round trip, wrong password, tampering, E3Kit's format."""

from __future__ import annotations

import struct

import pytest

from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.errors import (
    ConfigurationError,
    CorruptedStorageError,
    EThreeError,
    MalformedInputError,
    WrongPasswordError,
)
from twilio_e2ee.keyknox import (
    MINIMUM_PARAMS,
    Argon2Params,
    BackupIntegrityError,
    CorruptedBackupError,
    PythiaBackupNotSupportedError,
    WrongKeyknoxPasswordError,
    open_backup,
    parse_header,
    seal_backup,
)
from twilio_e2ee.keyknox.backup import params_problem

FAST = MINIMUM_PARAMS


@pytest.fixture(scope="module")
def sealed():
    key = generate_key_pair().private_key
    blob = seal_backup(key, "correct horse battery staple", identity="alice", params=FAST)
    return key, blob


def test_round_trip(sealed):
    key, blob = sealed
    restored = open_backup(blob.meta, blob.value, "correct horse battery staple", identity="alice")
    assert restored.der == key.der
    header = parse_header(blob.meta)
    assert header.params == FAST
    assert header.signer == key.public_key
    assert len(header.salt) == 16


def test_fresh_salt_and_nonce_each_time():
    key = generate_key_pair().private_key
    a = seal_backup(key, "pw-pw-pw", identity="alice", params=FAST)
    b = seal_backup(key, "pw-pw-pw", identity="alice", params=FAST)
    assert parse_header(a.meta).salt != parse_header(b.meta).salt
    assert a.value != b.value


def test_unicode_password_is_normalised():
    key = generate_key_pair().private_key
    blob = seal_backup(key, "caf\u00e9", identity="alice", params=FAST)  # composed é
    assert open_backup(blob.meta, blob.value, "cafe\u0301", identity="alice").der == key.der


def test_wrong_password_is_typed(sealed):
    _, blob = sealed
    with pytest.raises(WrongKeyknoxPasswordError) as info:
        open_backup(blob.meta, blob.value, "wrong password", identity="alice")
    assert isinstance(info.value, WrongPasswordError)
    assert isinstance(info.value, EThreeError)
    assert "password" in str(info.value)


@pytest.mark.parametrize(("identity", "key_name"), [("mallory", "default"), ("alice", "laptop")])
def test_blob_is_bound_to_owner_and_key_name(sealed, identity, key_name):
    _, blob = sealed
    with pytest.raises(BackupIntegrityError):
        open_backup(
            blob.meta,
            blob.value,
            "correct horse battery staple",
            identity=identity,
            key_name=key_name,
        )


def test_every_byte_flip_is_detected(sealed):
    """Any single modified byte of meta or value is refused with a typed error, never a key."""
    _, blob = sealed
    whole = blob.meta + blob.value
    for i in range(len(whole)):
        flipped = bytearray(whole)
        flipped[i] ^= 0x01
        meta, value = bytes(flipped[: len(blob.meta)]), bytes(flipped[len(blob.meta) :])
        with pytest.raises(CorruptedStorageError):
            open_backup(meta, value, "correct horse battery staple", identity="alice")


def test_truncation_is_detected(sealed):
    _, blob = sealed
    for cut in (0, 1, 10, len(blob.value) - 1):
        with pytest.raises(CorruptedBackupError):
            open_backup(
                blob.meta, blob.value[:cut], "correct horse battery staple", identity="alice"
            )
    with pytest.raises(CorruptedBackupError):
        open_backup(blob.meta[:-1], blob.value, "correct horse battery staple", identity="alice")
    with pytest.raises(CorruptedBackupError):
        open_backup(b"", b"", "x", identity="alice")


def _with_params(meta: bytes, t: int, m: int, p: int) -> bytes:
    return meta[:8] + struct.pack(">III", t, m, p) + meta[20:]


@pytest.mark.parametrize(
    ("t", "m", "p"),
    [(1, 19456, 1), (2, 1024, 1), (2, 8 * 1024 * 1024, 1), (99, 65536, 4), (3, 65536, 0)],
)
def test_header_parameters_out_of_range_are_refused(sealed, t, m, p):
    """A blob cannot lower the KDF cost below the floor nor demand unbounded work."""
    _, blob = sealed
    with pytest.raises(CorruptedBackupError, match="outside the accepted range"):
        open_backup(_with_params(blob.meta, t, m, p), blob.value, "x", identity="alice")


def test_unknown_version_says_to_upgrade(sealed):
    _, blob = sealed
    meta = blob.meta[:6] + b"\x02" + blob.meta[7:]
    with pytest.raises(CorruptedBackupError, match="upgrade"):
        parse_header(meta)


def test_e3kit_pythia_blob_is_recognised(vectors):
    """Keyknox entries written by E3Kit carry a Virgil message info as meta (signThenEncrypt)."""
    # A real Virgil message info from the vectors (signThenEncrypt writes the same structure).
    message = _first_virgil_message(vectors)
    with pytest.raises(PythiaBackupNotSupportedError, match="Pythia backups are not supported"):
        open_backup(message[:400], message[400:], "pw", identity="alice")


def test_keyknox_entry_in_virgil_format_is_recognised():
    """An entry as Virgil's KeyknoxCrypto writes it: meta = message info, value = ciphertext."""
    from twilio_e2ee.crypto import sign_then_encrypt
    from twilio_e2ee.crypto.message_info import parse_message_info
    from twilio_e2ee.keyknox import is_e3kit_pythia_backup

    brain = generate_key_pair().private_key  # stands for E3Kit's Pythia brain key
    message = sign_then_encrypt(b'{"alice": {"data": "..."}}', brain, [brain.public_key])
    split = parse_message_info(message).length
    meta, value = message[:split], message[split:]
    assert is_e3kit_pythia_backup(meta)
    with pytest.raises(PythiaBackupNotSupportedError, match="Restore it with E3Kit"):
        open_backup(meta, value, "any password", identity="alice")
    assert not is_e3kit_pythia_backup(seal_backup(brain, "pw", identity="a", params=FAST).meta)
    for junk in (None, "0" * 32, 12345, [0x30] * 20):  # a predicate answers, it does not crash
        assert not is_e3kit_pythia_backup(junk)  # type: ignore[arg-type]
    assert is_e3kit_pythia_backup(bytearray(meta)) and is_e3kit_pythia_backup(memoryview(meta))


def _first_virgil_message(vectors) -> bytes:
    import base64

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)
        elif isinstance(node, str) and len(node) > 600:
            try:
                raw = base64.b64decode(node, validate=True)
            except ValueError:
                return
            if raw[:1] == b"\x30" and bytes.fromhex("06092a864886f70d010703") in raw[:64]:
                yield raw

    for raw in walk(vectors):
        return raw
    pytest.fail("no Virgil message in the vectors")


def test_other_garbage_is_unknown_format():
    with pytest.raises(CorruptedBackupError, match="unknown format") as info:
        open_backup(b"hello world, not a backup", b"x" * 200, "pw", identity="alice")
    assert not isinstance(info.value, PythiaBackupNotSupportedError)


@pytest.mark.parametrize("password", ["", b"", None, 42, ["pw"]])
def test_bad_passwords_are_typed(sealed, password):
    key, blob = sealed
    with pytest.raises(MalformedInputError):
        seal_backup(key, password, identity="alice", params=FAST)
    with pytest.raises(MalformedInputError):
        open_backup(blob.meta, blob.value, password, identity="alice")


def test_weak_parameters_refused_when_writing():
    key = generate_key_pair().private_key
    with pytest.raises(ConfigurationError):
        seal_backup(key, "pw", identity="alice", params=Argon2Params(1, 1024, 1))


def test_default_parameters_are_rfc9106_second_recommendation():
    assert Argon2Params() == Argon2Params(time_cost=3, memory_kib=65536, parallelism=4)
    assert params_problem(Argon2Params()) is None


def test_argon2id_rfc9106_vector():
    """cryptography's Argon2id reproduces RFC 9106 §5.3 (no secret/ad, as we use it: sanity)."""
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    out = Argon2id(
        salt=b"\x02" * 16,
        length=32,
        iterations=3,
        lanes=4,
        memory_cost=32,
        ad=b"\x04" * 12,
        secret=b"\x03" * 8,
    ).derive(b"\x01" * 32)
    assert out.hex() == "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
