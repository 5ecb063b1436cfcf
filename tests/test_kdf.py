"""The shared Argon2id parameters (twilio_e2ee.crypto.kdf): vectors, old data, bounds, policies."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from argon2.low_level import Type, hash_secret_raw

from twilio_e2ee import keyknox, storage
from twilio_e2ee.crypto.kdf import Argon2ParameterError, Argon2Params
from twilio_e2ee.crypto.keys import import_private_key
from twilio_e2ee.errors import ConfigurationError, CorruptedStorageError, KeyStorageError
from twilio_e2ee.keyknox.backup import (
    MINIMUM_PARAMS,
    open_backup,
    params_problem,
    parse_header,
    seal_backup,
)
from twilio_e2ee.keyknox.errors import CorruptedBackupError
from twilio_e2ee.storage.base import KeyEntry
from twilio_e2ee.storage.fileformat import open_key_file, seal_key_file

COMPAT = json.loads((Path(__file__).parent / "data" / "kdf_compat.json").read_text())

# phc-winner-argon2 src/test.c, Argon2id v0x13, password "password", salt "somesalt", 32 bytes.
REFERENCE_VECTORS = [
    (2, 65536, 1, "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"),
    (2, 256, 1, "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe"),
    (2, 256, 2, "6d093c501fd5999645e0ea3bf620d7b8be7fd2db59c20d9fff9539da2bf57037"),
]


def _argon2_cffi(params: Argon2Params, password: bytes, salt: bytes, length: int) -> bytes:
    """What the key-file store used before (argon2-cffi's libargon2 binding)."""
    return hash_secret_raw(
        password,
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=length,
        type=Type.ID,
        version=0x13,
    )


@pytest.mark.parametrize(("t", "m", "p", "expected"), REFERENCE_VECTORS)
def test_reference_vectors(t: int, m: int, p: int, expected: str) -> None:
    params = Argon2Params(time_cost=t, memory_kib=m, parallelism=p)
    assert params.derive(b"password", b"somesalt").hex() == expected
    assert _argon2_cffi(params, b"password", b"somesalt", 32).hex() == expected


@pytest.mark.parametrize(
    ("params", "length"),
    [
        (Argon2Params(1, 8, 1), 64),  # the store's test parameters, 64-byte output (key + verifier)
        (Argon2Params(2, 64, 2), 64),
        (Argon2Params(3, 1024, 4), 32),
        (MINIMUM_PARAMS, 32),  # the backup's floor
    ],
)
def test_cryptography_matches_argon2_cffi(params: Argon2Params, length: int) -> None:
    """The old key-file derivation (argon2-cffi) and the shared one (cryptography) agree."""
    password, salt = "pässwörd ✓".encode(), bytes(range(16, 48))
    ours = params.derive(password, salt, length)
    assert len(ours) == length
    assert ours == _argon2_cffi(params, password, salt, length)
    assert params.derive(password + b"x", salt, length) != ours


def test_one_class_everywhere() -> None:
    assert storage.Argon2Params is keyknox.Argon2Params is Argon2Params
    assert keyknox.backup.Argon2Params is storage.fileformat.Argon2Params is Argon2Params
    assert Argon2Params() == Argon2Params(time_cost=3, memory_kib=64 * 1024, parallelism=4)
    with pytest.raises(TypeError):
        Argon2Params(memory_cost_kib=65536)  # type: ignore[call-arg]


def test_key_file_written_before_the_change_still_opens() -> None:
    kf = COMPAT["key_file"]
    entry = open_key_file(bytes.fromhex(kf["file"]), kf["password"], expected_name=kf["name"])
    assert entry.private_key.der == bytes.fromhex(kf["private_key_der"])
    assert dict(entry.meta or {}) == kf["meta"]


def test_backup_written_before_the_change_still_opens() -> None:
    bk = COMPAT["backup"]
    meta, value = bytes.fromhex(bk["meta"]), bytes.fromhex(bk["value"])
    assert parse_header(meta).params == MINIMUM_PARAMS
    key = open_backup(meta, value, bk["password"], identity=bk["identity"])
    assert key.der == bytes.fromhex(bk["private_key_der"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_cost": 0},
        {"time_cost": 65},
        {"parallelism": 0},
        {"parallelism": 65},
        {"memory_kib": 31, "parallelism": 4},  # under 8 KiB per lane
        {"memory_kib": 4 * 1024 * 1024 + 1},
        {"time_cost": True},
        {"memory_kib": 65536.0},
        {"parallelism": "4"},
    ],
)
def test_bad_parameters_are_typed(kwargs: dict[str, Any]) -> None:
    with pytest.raises(Argon2ParameterError) as info:
        Argon2Params(**kwargs)
    assert isinstance(info.value, KeyStorageError) and isinstance(info.value, ConfigurationError)


@pytest.mark.parametrize(
    ("password", "salt", "length"),
    [("pw", b"s" * 16, 32), (b"pw", "s" * 16, 32), (b"pw", b"short", 32), (b"pw", b"s" * 16, 3)],
)
def test_bad_derive_inputs_are_typed(password: Any, salt: Any, length: int) -> None:
    with pytest.raises(Argon2ParameterError):
        Argon2Params(1, 8, 1).derive(password, salt, length)


def test_backup_policy_floor_on_write_and_read() -> None:
    assert params_problem(MINIMUM_PARAMS) is None
    assert params_problem(Argon2Params(1, 19 * 1024, 1)) is not None
    assert params_problem(Argon2Params(2, 19 * 1024 - 1, 1)) is not None
    assert params_problem((3, 65536, 4)) is not None
    key = import_private_key(bytes.fromhex(COMPAT["backup"]["private_key_der"]))
    with pytest.raises(ConfigurationError, match="floor"):
        seal_backup(key, "pw", identity="alice", params=Argon2Params(2, 1024, 1))
    # A blob whose header asks for too little or absurd work is refused before any derivation.
    meta = bytearray(bytes.fromhex(COMPAT["backup"]["meta"]))
    value = bytes.fromhex(COMPAT["backup"]["value"])
    for t, m, p in [(1, 19 * 1024, 1), (2, 1024, 1), (2, 8 * 1024 * 1024, 1), (100, 19456, 1)]:
        struct.pack_into(">III", meta, 8, t, m, p)
        with pytest.raises(CorruptedBackupError, match="refusing backup"):
            open_backup(bytes(meta), value, "pw", identity="alice")


def test_key_file_policy_refuses_absurd_stored_parameters() -> None:
    key = import_private_key(bytes.fromhex(COMPAT["key_file"]["private_key_der"]))
    good = seal_key_file(KeyEntry("bob", key), "pw", Argon2Params(1, 8, 1))
    for t, m, p in [(0, 8, 1), (65, 8, 1), (1, 8 * 1024 * 1024, 1), (1, 8, 0)]:
        bad = bytearray(good)
        struct.pack_into(">IIB", bad, 9, t, m, p)
        with pytest.raises(CorruptedStorageError, match="Argon2"):
            open_key_file(bytes(bad), "pw")
    with pytest.raises(KeyStorageError):
        seal_key_file(KeyEntry("bob", key), "pw", (1, 8, 1))  # type: ignore[arg-type]
