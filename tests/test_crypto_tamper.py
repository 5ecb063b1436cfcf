"""Tampering and fuzzing: every decoder raises only the package's typed errors.

* Every single-byte change of short auth_encrypt messages (ours, with the key commitment) is
  rejected with a typed error, and the same for Virgil-form messages (no commitment): those we
  cannot always reject (unauthenticated header bytes), but we never return another plaintext.
* Hypothesis throws random and mutated input at every decoder.
"""

from __future__ import annotations

import base64
import contextlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twilio_e2ee.crypto import (
    auth_decrypt,
    auth_encrypt,
    decrypt,
    decrypt_then_verify,
    ecies,
    encrypt,
    generate_key_pair,
    import_private_key,
    import_public_key,
    inspect_message,
    message_info,
    message_recipient_ids,
    messages,
    padding,
    sign_then_encrypt,
    verify,
)
from twilio_e2ee.crypto.der import DerReader
from twilio_e2ee.errors import (
    E2EEError,
    IntegrityError,
    MalformedInputError,
    NotARecipientError,
    UnusableKeyError,
)

TYPED = (MalformedInputError, NotARecipientError, IntegrityError, UnusableKeyError)

ALICE = generate_key_pair()
BOB = generate_key_pair()
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _flip_all(message: bytes, opener: object, mask: int) -> list[int]:
    """Positions where flipping `mask` did NOT raise a typed error (must stay empty for ours)."""
    accepted: list[int] = []
    for i in range(len(message)):
        tampered = bytearray(message)
        tampered[i] ^= mask
        try:
            opener(bytes(tampered))  # type: ignore[operator]
        except TYPED:
            continue
        accepted.append(i)
    return accepted


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
@pytest.mark.parametrize("recipients", [1, 2])
def test_every_byte_flip_of_auth_encrypt_is_rejected(mask: int, recipients: int) -> None:
    keys = [BOB.public_key, ALICE.public_key][:recipients]
    message = auth_encrypt(b"hi there!", ALICE.private_key, keys)
    assert (
        _flip_all(message, lambda m: auth_decrypt(m, BOB.private_key, ALICE.public_key), mask) == []
    )


@pytest.mark.parametrize("mode", ["encrypt", "sign_then_encrypt"])
def test_every_byte_flip_of_other_modes_is_rejected(mode: str) -> None:
    if mode == "encrypt":
        message = encrypt(b"hi there!", BOB.public_key, padding=True)
        opener = lambda m: decrypt(m, BOB.private_key)  # noqa: E731
    else:
        message = sign_then_encrypt(b"hi there!", ALICE.private_key, BOB.public_key)
        opener = lambda m: decrypt_then_verify(m, BOB.private_key, ALICE.public_key)  # noqa: E731
    assert _flip_all(message, opener, 0x01) == []


def test_virgil_form_flips_are_rejected_too() -> None:
    """Without our commitment some header bytes are not authenticated by Virgil's format (its own
    decryptors accept ~6% of single flips); our strict parser and the check that the header
    nonce equals the HKDF-derived one still reject every flip of such a message."""
    message = auth_encrypt(b"hi there!", ALICE.private_key, BOB.public_key, key_commitment=False)
    opener = lambda m: auth_decrypt(m, BOB.private_key, ALICE.public_key)  # noqa: E731
    assert _flip_all(message, opener, 0x01) == []


def test_truncations_and_extensions_rejected() -> None:
    message = auth_encrypt(b"hi there!", ALICE.private_key, [BOB.public_key, ALICE.public_key])
    for cut in range(len(message)):
        with pytest.raises(TYPED):
            auth_decrypt(message[:cut], BOB.private_key, ALICE.public_key)
    with pytest.raises(TYPED):
        auth_decrypt(message + b"\x00" * 3, BOB.private_key, ALICE.public_key)


# --- Hypothesis fuzz of every decoder -----------------------------------------------------------

SAMPLES = [
    auth_encrypt(b"fuzz me", ALICE.private_key, [BOB.public_key, ALICE.public_key]),
    auth_encrypt(b"fuzz me", ALICE.private_key, BOB.public_key, key_commitment=False),
    sign_then_encrypt(b"fuzz me", ALICE.private_key, BOB.public_key, padding=True),
    encrypt(b"fuzz me", [BOB.public_key, ALICE.public_key]),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid message with a few random edits (overwrite, insert, delete, truncate)."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


inputs = st.one_of(st.binary(max_size=600), mutated())


def _only_package_errors(fn: object, data: object) -> object:
    try:
        return fn(data)  # type: ignore[operator]
    except E2EEError:
        return None


@FUZZ
@given(inputs)
def test_fuzz_message_decoders(data: bytes) -> None:
    for fn in (
        lambda d: auth_decrypt(d, BOB.private_key, ALICE.public_key),
        lambda d: decrypt_then_verify(d, BOB.private_key, [ALICE.public_key, BOB.public_key]),
        lambda d: decrypt(d, BOB.private_key),
        message_recipient_ids,
        inspect_message,
        message_info.parse_message_info,
    ):
        out = _only_package_errors(fn, data)
        if isinstance(out, bytes):
            assert out == b"fuzz me"  # an edit may be accepted only if it changes nothing


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=200))
def test_fuzz_key_and_signature_decoders(data: bytes | str) -> None:
    _only_package_errors(import_public_key, data)
    _only_package_errors(import_private_key, data)
    _only_package_errors(lambda d: verify(b"x", d, ALICE.public_key), data)
    _only_package_errors(lambda d: message_recipient_ids(d), data)


@FUZZ
@given(st.binary(min_size=0, max_size=260))
def test_fuzz_envelope_padding_and_der(data: bytes) -> None:
    _only_package_errors(lambda d: ecies.unwrap_key(d, BOB.private_key), data)
    _only_package_errors(padding.unpad, data)
    _only_package_errors(messages._parse_footer, data)

    def walk(d: bytes) -> None:
        r = DerReader(d)
        while not r.at_end():
            r.read_any("fuzz")

    _only_package_errors(walk, data)


@FUZZ
@given(st.integers(0, 225), st.integers(1, 255))
def test_fuzz_single_envelope_bytes(position: int, mask: int) -> None:
    """A changed envelope byte is rejected, except in the CBC IV, which Virgil's format leaves
    out of the MAC: that yields a *different* key, which the message layer then rejects (our key
    commitment, the derived-nonce check or the GCM tag)."""
    key = os.urandom(32)
    envelope = ecies.wrap_key_for_all(key, [BOB.public_key])[0]
    tampered = bytearray(envelope)
    tampered[position] ^= mask
    with contextlib.suppress(TYPED):
        assert ecies.unwrap_key(bytes(tampered), BOB.private_key) != key


def test_base64_text_is_strict() -> None:
    message = encrypt(b"x", BOB.public_key)
    text = base64.b64encode(message).decode()
    assert decrypt(text, BOB.private_key) == b"x"
    with pytest.raises(MalformedInputError):
        decrypt(text[:-1] + "*", BOB.private_key)
