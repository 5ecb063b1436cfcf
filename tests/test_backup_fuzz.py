"""Property-based fuzz of the backup-blob decoder: only the package's typed errors come out."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.errors import E2EEError
from twilio_e2ee.keyknox import MINIMUM_PARAMS, open_backup, parse_header, seal_backup

KEY = generate_key_pair().private_key
BLOB = seal_backup(KEY, "fuzz password", identity="alice", params=MINIMUM_PARAMS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_parse_header_random_bytes(data):
    with pytest.raises(E2EEError):
        parse_header(data)


@settings(max_examples=300, deadline=None)
@given(
    where=st.integers(min_value=0, max_value=len(BLOB.meta) + len(BLOB.value) - 1),
    mask=st.integers(min_value=1, max_value=255),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=len(BLOB.value))),
)
def test_mutated_blob_never_opens(where, mask, cut):
    whole = bytearray(BLOB.meta + BLOB.value)
    whole[where] ^= mask
    meta, value = bytes(whole[: len(BLOB.meta)]), bytes(whole[len(BLOB.meta) :])
    if cut is not None:
        value = value[:cut]
    with pytest.raises(E2EEError):
        open_backup(meta, value, "fuzz password", identity="alice")
