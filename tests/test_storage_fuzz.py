"""Hypothesis fuzz of the key-file parser: any input is parsed or refused with a typed error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.errors import CorruptedStorageError, WrongPasswordError
from twilio_e2ee.storage import Argon2Params, KeyEntry
from twilio_e2ee.storage.fileformat import MAGIC, open_key_file, parse_header, seal_key_file

FAST = Argon2Params(time_cost=1, memory_kib=8, parallelism=1)
ENTRY = KeyEntry("alice", generate_key_pair().private_key, {"a": "b"}, 1.0, 2.0)
GOOD = seal_key_file(ENTRY, "pw", FAST)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512) | st.binary(max_size=200).map(lambda b: MAGIC + b"\x01\x01" + b))
def test_random_bytes_never_escape_typed_errors(data: bytes) -> None:
    with pytest.raises(CorruptedStorageError):
        parse_header(data)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(1, 255)), min_size=1, max_size=4),
    st.integers(0, len(GOOD)),
)
def test_mutated_files_are_corruption(flips: list[tuple[int, int]], cut: int) -> None:
    bad = bytearray(GOOD)
    for pos, xor in flips:
        bad[pos] ^= xor
    data = bytes(bad[:cut]) if cut < len(GOOD) else bytes(bad)
    if data == GOOD:
        return
    with pytest.raises(CorruptedStorageError):
        open_key_file(data, "pw")


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=30).filter(lambda p: p != "pw"))
def test_other_passwords_are_wrong_password(password: str) -> None:
    with pytest.raises(WrongPasswordError):
        open_key_file(GOOD, password)
    assert open_key_file(GOOD, "pw").private_key.der == ENTRY.private_key.der
