"""Our Virgil-format messages: round trips, modes, key commitment, strictness and typed errors."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from twilio_e2ee.crypto import (
    KeyPair,
    auth_decrypt,
    auth_decrypt_message,
    auth_encrypt,
    decrypt,
    decrypt_message,
    decrypt_then_verify,
    decrypt_then_verify_message,
    der,
    ecies,
    encrypt,
    generate_key_pair,
    import_public_key,
    inspect_message,
    message_info,
    message_recipient_ids,
    messages,
    sign_then_encrypt,
)
from twilio_e2ee.crypto.keys import ED25519_SPKI_PREFIX, _edwards_small_order_or_invalid
from twilio_e2ee.crypto.padding import pad, padded_length, unpad
from twilio_e2ee.errors import (
    IntegrityError,
    MalformedInputError,
    NotARecipientError,
    SignatureError,
    UnusableKeyError,
)

SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]


@pytest.fixture(scope="module")
def people() -> list[KeyPair]:
    return [generate_key_pair() for _ in range(6)]


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [True, False])
@pytest.mark.parametrize("commit", [True, False])
def test_auth_encrypt_round_trip(people: list[KeyPair], padding: bool, commit: bool) -> None:
    alice, *others = people
    keys = [alice.public_key] + [p.public_key for p in others]
    data = os.urandom(1000)
    message = auth_encrypt(data, alice.private_key, keys, padding=padding, key_commitment=commit)
    for person in people:
        result = auth_decrypt_message(message, person.private_key, alice.public_key)
        assert result.plaintext == data
        assert result.mode == "auth_encrypt"
        assert result.signer_key == alice.public_key
        assert result.signer_key_id == alice.public_key.identifier
        assert result.key_committed is commit
        assert result.padded is padding
        assert result.recipient_count == len(people)


def test_all_modes_and_input_forms(people: list[KeyPair]) -> None:
    alice, bob = people[0], people[1]
    data = bytearray(b"hello bob")
    m1 = encrypt(data, bob.public_key)
    m2 = sign_then_encrypt(memoryview(data), alice.private_key, [bob.public_key], padding=True)
    m3 = auth_encrypt(bytes(data), alice.private_key, (bob.public_key, alice.public_key))
    import base64

    assert decrypt(base64.b64encode(m1).decode(), bob.private_key) == data
    assert decrypt_then_verify(m2, bob.private_key, alice.public_key) == data
    assert auth_decrypt(m3, alice.private_key, alice.public_key) == data
    # plain decrypt opens every mode (without checking signatures)
    assert decrypt(m2, bob.private_key) == decrypt(m3, bob.private_key) == data
    stm = decrypt_then_verify_message(m2, bob.private_key, [people[2].public_key, alice.public_key])
    assert stm.signer_key == alice.public_key and stm.padded
    assert decrypt_message(m1, bob.private_key).mode == "encrypt"
    assert decrypt_message(m3, bob.private_key).signer_key is None  # not verified without keys
    assert decrypt_message(m3, bob.private_key, alice.public_key).signer_key == alice.public_key


def test_empty_and_frame_boundaries(people: list[KeyPair]) -> None:
    alice, bob = people[0], people[1]
    for size in (0, 1, 155, 156, 157, 160, 316, 2000):
        data = os.urandom(size)
        message = auth_encrypt(data, alice.private_key, bob.public_key)
        assert auth_decrypt(message, bob.private_key, alice.public_key) == data
        info = message_info.parse_message_info(message)
        assert info.data_size == padded_length(size) and info.data_size % 160 == 0


def test_recipient_ids_and_dedup(people: list[KeyPair]) -> None:
    alice, bob = people[0], people[1]
    message = auth_encrypt(
        b"x", alice.private_key, [bob.public_key, alice.public_key, bob.public_key]
    )
    ids = message_recipient_ids(message)
    assert sorted(ids) == sorted([bob.public_key.identifier, alice.public_key.identifier])


def test_inspect_message(people: list[KeyPair]) -> None:
    alice, bob = people[0], people[1]
    auth = inspect_message(
        auth_encrypt(b"x", alice.private_key, [bob.public_key, alice.public_key])
    )
    assert auth.mode == "auth_encrypt" and auth.padded and auth.key_committed
    assert auth.signer_key_id is None  # hidden in the encrypted footer
    assert set(auth.recipient_ids) == {bob.public_key.identifier, alice.public_key.identifier}
    legacy = inspect_message(sign_then_encrypt(b"x", alice.private_key, bob.public_key))
    assert legacy.mode == "sign_then_encrypt"
    assert legacy.signer_key_id == alice.public_key.identifier  # visible to anyone
    plain = encrypt(b"x", bob.public_key, key_commitment=False)
    summary = inspect_message(plain)
    assert summary.mode == "encrypt" and not summary.key_committed
    assert summary.total_size == len(plain) and summary.header_size < len(plain)


def test_not_a_recipient(people: list[KeyPair]) -> None:
    message = auth_encrypt(b"x", people[0].private_key, [people[1].public_key])
    with pytest.raises(NotARecipientError):
        auth_decrypt(message, people[2].private_key, people[0].public_key)


def test_signature_errors(people: list[KeyPair]) -> None:
    alice, bob, carol = people[0], people[1], people[2]
    auth = auth_encrypt(b"x", alice.private_key, bob.public_key)
    legacy = sign_then_encrypt(b"x", alice.private_key, bob.public_key)
    plain = encrypt(b"x", bob.public_key)
    with pytest.raises(SignatureError):
        auth_decrypt(auth, bob.private_key, carol.public_key)  # signer id names another key
    with pytest.raises(SignatureError):
        auth_decrypt(legacy, bob.private_key, alice.public_key)  # not an authEncrypt message
    with pytest.raises(SignatureError):
        auth_decrypt(plain, bob.private_key, alice.public_key)
    with pytest.raises(SignatureError):
        decrypt_then_verify(auth, bob.private_key, alice.public_key)
    with pytest.raises(SignatureError):
        decrypt_then_verify(legacy, bob.private_key, carol.public_key)
    with pytest.raises(SignatureError):
        decrypt_message(plain, bob.private_key, alice.public_key)


def test_forged_signature_under_right_id(people: list[KeyPair]) -> None:
    """Carol signs but claims Alice's key id: the signature check fails."""
    alice, bob, carol = people[0], people[1], people[2]
    forged = messages._footer(carol.private_key, hashlib.sha512(b"x").digest())
    forged = forged.replace(carol.public_key.identifier, alice.public_key.identifier)
    real = messages._footer
    try:
        messages._footer = lambda signer, digest: forged  # type: ignore[assignment]
        message = auth_encrypt(b"x", carol.private_key, bob.public_key)
    finally:
        messages._footer = real  # type: ignore[assignment]
    with pytest.raises(SignatureError):
        auth_decrypt(message, bob.private_key, [carol.public_key, alice.public_key])


def test_bad_arguments(people: list[KeyPair]) -> None:
    alice, bob = people[0], people[1]
    with pytest.raises(UnusableKeyError):
        auth_encrypt(b"x", alice.private_key, [])
    with pytest.raises(UnusableKeyError):
        auth_encrypt(b"x", alice.private_key, [bob.private_key])  # type: ignore[list-item]
    with pytest.raises(UnusableKeyError):
        auth_encrypt(b"x", alice.public_key, bob.public_key)  # type: ignore[arg-type]
    with pytest.raises(UnusableKeyError):
        encrypt(b"x", "not a key")  # type: ignore[arg-type]
    with pytest.raises(MalformedInputError):
        auth_encrypt("text", alice.private_key, bob.public_key)  # type: ignore[arg-type]
    message = auth_encrypt(b"x", alice.private_key, bob.public_key)
    with pytest.raises(UnusableKeyError):
        auth_decrypt(message, bob.public_key, alice.public_key)  # type: ignore[arg-type]
    with pytest.raises(MalformedInputError):
        auth_decrypt("%%% not base64", bob.private_key, alice.public_key)
    with pytest.raises(MalformedInputError):
        auth_decrypt(12, bob.private_key, alice.public_key)  # type: ignore[arg-type]


# --- key commitment ------------------------------------------------------------------------------


def _gf_mul(x: int, y: int) -> int:
    """Multiplication in GCM's GF(2^128) (NIST SP 800-38D bit order)."""
    z, v = 0, x
    for i in range(127, -1, -1):
        if (y >> i) & 1:
            z ^= v
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    return z


def _gf_pow(x: int, e: int) -> int:
    result = 1 << 127  # the field's 1 in GCM bit order
    while e:
        if e & 1:
            result = _gf_mul(result, x)
        x = _gf_mul(x, x)
        e >>= 1
    return result


def _aes_block(key: bytes, block: bytes) -> int:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return int.from_bytes(enc.update(block) + enc.finalize(), "big")


def _salamander(k1: bytes, k2: bytes, nonce: bytes, blocks: int = 4) -> bytes:
    """One AES-GCM ciphertext + tag that authenticates under both keys (Dodis et al. 2018):
    all blocks random but one, solved from the linear equation tag(k1) = tag(k2)."""
    h1, h2 = _aes_block(k1, bytes(16)), _aes_block(k2, bytes(16))
    j0 = nonce + b"\x00\x00\x00\x01"
    lengths = blocks * 128  # len(AAD) = 0 || len(C) in bits, as one block
    c = [int.from_bytes(os.urandom(16), "big") for _ in range(blocks)]

    def coeff(i: int) -> int:  # block i (0-based) is multiplied by H^(blocks + 1 - i)
        return _gf_pow(h1, blocks + 1 - i) ^ _gf_pow(h2, blocks + 1 - i)

    rhs = _aes_block(k1, j0) ^ _aes_block(k2, j0) ^ _gf_mul(lengths, h1 ^ h2)
    for i in range(1, blocks):
        rhs ^= _gf_mul(c[i], coeff(i))
    c[0] = _gf_mul(rhs, _gf_pow(coeff(0), 2**128 - 2))  # divide by the coefficient
    tag = 0
    for block in [*c, lengths]:
        tag = _gf_mul(tag ^ block, h1)
    tag ^= _aes_block(k1, j0)
    return b"".join(x.to_bytes(16, "big") for x in c) + tag.to_bytes(16, "big")


def _two_key_message(people: list[KeyPair], commit: bool) -> bytes:
    """A malicious sender's `encrypt` message: one header and body, but Bob's and Carol's
    entries wrap *different* keys, and the body is an AES-GCM "invisible salamander" that
    authenticates under both, so each would read a different plaintext."""
    bob, carol = people[1], people[2]
    k_bob, k_carol, nonce = os.urandom(32), os.urandom(32), os.urandom(12)
    entries = messages._entries(k_bob, [bob.public_key]) + messages._entries(
        k_carol, [carol.public_key]
    )
    header = messages._seal_header(
        entries,
        nonce,
        k_bob,
        custom_params={},
        data_size=None,
        padded=False,
        key_commitment=commit,
    )
    return header + _salamander(k_bob, k_carol, nonce)


def test_invisible_salamander_without_commitment(people: list[KeyPair]) -> None:
    """Virgil's format alone (unsigned encrypt) lets one message open to two plaintexts."""
    message = _two_key_message(people, commit=False)
    for_bob = decrypt(message, people[1].private_key)
    for_carol = decrypt(message, people[2].private_key)
    assert for_bob != for_carol and len(for_bob) == len(for_carol) == 64


def test_key_commitment_stops_the_salamander(people: list[KeyPair]) -> None:
    message = _two_key_message(people, commit=True)
    assert len(decrypt(message, people[1].private_key)) == 64
    with pytest.raises(IntegrityError, match="key commitment"):
        decrypt(message, people[2].private_key)  # rejected before the body is looked at


def test_require_key_commitment(people: list[KeyPair]) -> None:
    alice, bob = people[0], people[1]
    virgil_form = auth_encrypt(b"x", alice.private_key, bob.public_key, key_commitment=False)
    assert message_info.COMMITMENT_PARAM.encode() not in virgil_form
    assert auth_decrypt(virgil_form, bob.private_key, alice.public_key) == b"x"
    with pytest.raises(IntegrityError):
        auth_decrypt_message(
            virgil_form, bob.private_key, alice.public_key, require_key_commitment=True
        )
    ours = auth_encrypt(b"x", alice.private_key, bob.public_key)
    result = auth_decrypt_message(
        ours, bob.private_key, alice.public_key, require_key_commitment=True
    )
    assert result.key_committed


def test_commitment_binds_other_recipients_entries(people: list[KeyPair]) -> None:
    """Changing Carol's entry (which Bob cannot check himself) breaks Bob's decryption."""
    alice, bob, carol = people[0], people[1], people[2]
    message = bytearray(auth_encrypt(b"x", alice.private_key, [bob.public_key, carol.public_key]))
    info = message_info.parse_message_info(bytes(message))
    carol_envelope = dict(info.recipients)[carol.public_key.identifier]
    at = bytes(message).index(carol_envelope)
    message[at + 100] ^= 0x40
    with pytest.raises(IntegrityError, match="key commitment"):
        auth_decrypt(bytes(message), bob.private_key, alice.public_key)


# --- keys in messages ----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", SMALL_ORDER)
def test_small_order_public_keys_rejected(encoding: str) -> None:
    raw = bytes.fromhex(encoding)
    with pytest.raises(UnusableKeyError):
        import_public_key(raw)
    with pytest.raises(UnusableKeyError):
        import_public_key(ED25519_SPKI_PREFIX + raw)


def _replace_ephemeral(message: bytes, recipient: KeyPair, new_key: bytes) -> bytes:
    info = message_info.parse_message_info(message)
    envelope = dict(info.recipients)[recipient.public_key.identifier]
    epk_at = message.index(envelope) + len(ecies._HEAD)
    return message[:epk_at] + new_key + message[epk_at + 32 :]


@pytest.mark.parametrize("encoding", SMALL_ORDER)
def test_small_order_ephemeral_key_rejected(people: list[KeyPair], encoding: str) -> None:
    alice, bob = people[0], people[1]
    message = auth_encrypt(b"x", alice.private_key, bob.public_key, key_commitment=False)
    bad = _replace_ephemeral(message, bob, bytes.fromhex(encoding))
    with pytest.raises(UnusableKeyError):
        auth_decrypt(bad, bob.private_key, alice.public_key)


def test_off_curve_ephemeral_key_rejected(people: list[KeyPair]) -> None:
    """An ephemeral y that is not on the curve maps to the twist: refused (MAC fails)."""
    alice, bob = people[0], people[1]
    message = auth_encrypt(b"x", alice.private_key, bob.public_key, key_commitment=False)
    y = 2
    while _edwards_small_order_or_invalid(y.to_bytes(32, "little")) != "not a point on the curve":
        y += 1
    bad = _replace_ephemeral(message, bob, y.to_bytes(32, "little"))
    with pytest.raises((IntegrityError, UnusableKeyError)):
        auth_decrypt(bad, bob.private_key, alice.public_key)


def test_our_ephemeral_keys_are_sound_points(people: list[KeyPair]) -> None:
    keys = [p.public_key for p in people]
    message = encrypt(b"x", keys)
    for _, envelope in message_info.parse_message_info(message).recipients:
        epk = envelope[len(ecies._HEAD) : len(ecies._HEAD) + 32]
        assert _edwards_small_order_or_invalid(epk) is None
        assert epk[31] & 0x80 == 0


def test_legacy_sha256_ids_and_mixed_entry_sizes(people: list[KeyPair]) -> None:
    """A header mixing 8-byte and 32-byte key ids is still found (walk path)."""
    alice, bob, carol = people[0], people[1], people[2]
    key, nonce = os.urandom(32), os.urandom(12)
    envelopes = ecies.wrap_key_for_all(key, [bob.public_key, carol.public_key])
    entries = [
        message_info.recipient_entry(bob.public_key.identifier, envelopes[0]),
        message_info.recipient_entry(hashlib.sha256(carol.public_key.der).digest(), envelopes[1]),
    ]
    header = messages._seal_header(
        entries, nonce, key, custom_params={}, data_size=None, padded=False, key_commitment=True
    )
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    message = header + AESGCM(key).encrypt(nonce, b"both", b"")
    assert decrypt(message, bob.private_key) == b"both"
    assert decrypt(message, carol.private_key) == b"both"
    with pytest.raises(NotARecipientError):
        decrypt(message, alice.private_key)


def test_decryption_decodes_only_its_own_entry(people: list[KeyPair]) -> None:
    keys = [generate_key_pair() for _ in range(40)]
    message = encrypt(b"x", [k.public_key for k in keys])
    me = keys[17].private_key
    info = message_info.parse_message_info(message, [me.identifier])
    assert info.recipient_count == 40 and len(info.recipients) == 1
    assert info.recipients[0][0] == me.identifier
    assert decrypt(message, me) == b"x"


# --- building blocks -----------------------------------------------------------------------------


def test_padding() -> None:
    for size in (0, 1, 156, 157, 500):
        data = os.urandom(size)
        padded = pad(data)
        assert len(padded) % 160 == 0 and len(padded) >= size + 4
        assert unpad(padded) == data
    with pytest.raises(MalformedInputError):
        unpad(b"\x01\x02")
    with pytest.raises(MalformedInputError):
        unpad(b"\x00" * 10 + (100).to_bytes(4, "little"))


@pytest.mark.parametrize(
    "blob",
    [
        "3081 05 0403616263",  # non-minimal long length
        "3080 0000",  # indefinite length
        "1f01 00",  # multi-byte tag
        "3003 0201",  # runs past its end
        "3085 0000000001 00",  # too many length bytes
        "308200 05 0403616263",  # non-minimal two-byte length
    ],
)
def test_der_reader_rejects_non_canonical(blob: str) -> None:
    with pytest.raises(MalformedInputError):
        der.DerReader(bytes.fromhex(blob)).read_any("test")


def test_der_integers() -> None:
    def read(hexstr: str) -> int:
        return der.DerReader(bytes.fromhex(hexstr)).integer("test")

    assert read("020100") == 0 and read("020200a0") == 160
    for bad in ("0200", "0202007f", "0201ff", "02020000"):
        with pytest.raises(MalformedInputError):
            read(bad)
    for value in (0, 1, 127, 128, 255, 256, 14080, 2**40):
        assert der.DerReader(der.integer(value)).integer("test") == value
    for n in (0, 1, 127, 128, 255, 256, 65535, 65536):
        encoded = der.tlv(0x04, bytes(n))
        r = der.DerReader(encoded)
        assert r.octets("t") == bytes(n)
        r.finish("t")


def test_trailing_bytes_after_footer_rejected(people: list[KeyPair]) -> None:
    alice, bob = people[0], people[1]
    message = auth_encrypt(b"x", alice.private_key, bob.public_key)
    with pytest.raises(IntegrityError):
        auth_decrypt(message + b"\x00", bob.private_key, alice.public_key)
    plain = encrypt(b"x", bob.public_key)
    with pytest.raises(IntegrityError):
        decrypt(plain + b"\x00", bob.private_key)


def test_footer_fast_path_matches_generic_parser(
    people: list[KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    footer = messages._footer(people[0].private_key, hashlib.sha512(b"x").digest())
    fast = messages._parse_footer(footer)
    monkeypatch.setattr(messages, "_FOOTER_LEN_8", -1)
    assert messages._parse_footer(footer) == fast == [(people[0].public_key.identifier, fast[0][1])]
    for cut in range(len(footer)):
        with pytest.raises(MalformedInputError):
            messages._parse_footer(footer[:cut])
