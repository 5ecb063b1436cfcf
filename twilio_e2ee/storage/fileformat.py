"""The encrypted key-file format (sans-I/O): a versioned header, then AES-256-GCM ciphertext.

Layout (integers big-endian)::

    magic        7   b"TE2EKEY"
    version      1   0x01
    kdf          1   0x01 = Argon2id (RFC 9106, version 0x13)
    time_cost    4   Argon2 iterations
    memory_kib   4   Argon2 memory in KiB
    parallelism  1   Argon2 lanes
    salt_len     1   16..64
    salt         salt_len
    name_len     2   1..MAX_NAME_BYTES
    name         name_len   the entry name, UTF-8
    nonce        12  AES-GCM nonce (random per write)
    verifier     32  SHA-256("te2e-key-verifier" || kdf_out[32:64])
    checksum     16  SHA-256(all of the above)[:16]
    ciphertext   ≥16 AES-256-GCM(key = kdf_out[0:32], aad = the whole header) of the JSON payload

Argon2id derives 64 bytes from the password: the first half is the AES key, the second half feeds
the password verifier. The checksum (unkeyed) catches a damaged header, so that a wrong password
(verifier mismatch) is told apart from corruption (bad magic/params/checksum, or a GCM failure
after the verifier matched). The verifier gives an attacker nothing the GCM tag would not: each
guess still costs one Argon2id evaluation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twilio_e2ee.crypto.kdf import Argon2ParameterError, Argon2Params
from twilio_e2ee.crypto.keys import PrivateKey, import_private_key
from twilio_e2ee.errors import (
    CorruptedStorageError,
    E2EEError,
    KeyStorageError,
    WrongPasswordError,
)
from twilio_e2ee.storage.base import MAX_NAME_BYTES, KeyEntry, check_meta, check_name

__all__ = [
    "DEFAULT_PARAMS",
    "FORMAT_VERSION",
    "MAGIC",
    "Argon2Params",
    "KeyFileHeader",
    "open_key_file",
    "params_from_file",
    "parse_header",
    "password_bytes",
    "seal_key_file",
]

MAGIC = b"TE2EKEY"
FORMAT_VERSION = 1
KDF_ARGON2ID = 1
NONCE_LEN = 12
VERIFIER_LEN = 32
CHECKSUM_LEN = 16
TAG_LEN = 16
_FIXED = struct.Struct(">7sBBIIBB")  # magic, version, kdf, t, m, p, salt_len
_VERIFIER_LABEL = b"te2e-key-verifier"

MIN_SALT, MAX_SALT = 16, 64


DEFAULT_PARAMS = Argon2Params()


@dataclass(frozen=True)
class KeyFileHeader:
    """The parsed header of a key file; `raw` is the exact header bytes (the GCM AAD)."""

    params: Argon2Params
    salt: bytes
    name: str
    nonce: bytes
    verifier: bytes
    raw: bytes


def params_from_file(time_cost: int, memory_kib: int, parallelism: int) -> Argon2Params:
    """The key-file policy for stored parameters: any that :class:`Argon2Params` accepts (its
    upper bounds keep a hostile file from causing unbounded work); CorruptedStorageError else.

    No floor is enforced on reading, so files written with cheap (e.g. test) parameters open.
    """
    try:
        return Argon2Params(time_cost, memory_kib, parallelism)
    except Argon2ParameterError as exc:
        raise CorruptedStorageError(f"key file: {exc}") from None


def _derive(password: bytes, salt: bytes, params: Argon2Params) -> tuple[bytes, bytes]:
    out = params.derive(password, salt, 64)
    verifier = hashlib.sha256(_VERIFIER_LABEL + out[32:]).digest()
    return out[:32], verifier


def password_bytes(password: str | bytes) -> bytes:
    """The password as bytes (UTF-8 for str); KeyStorageError for anything else."""
    if isinstance(password, str):
        try:
            return password.encode("utf-8")
        except UnicodeEncodeError:
            raise KeyStorageError("password is not valid text (lone surrogate)") from None
    if isinstance(password, (bytes, bytearray)):
        return bytes(password)
    raise KeyStorageError(f"password must be str or bytes, got {type(password).__name__}")


def parse_header(data: bytes) -> tuple[KeyFileHeader, bytes]:
    """Split a key file into its header and ciphertext; CorruptedStorageError on any defect."""
    if not isinstance(data, (bytes, bytearray)):
        raise CorruptedStorageError("key file: expected bytes")
    data = bytes(data)
    if len(data) < _FIXED.size:
        raise CorruptedStorageError("key file: truncated header")
    magic, version, kdf, t, m, p, salt_len = _FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise CorruptedStorageError("key file: not a twilio_e2ee key file (bad magic)")
    if version != FORMAT_VERSION:
        raise CorruptedStorageError(f"key file: unsupported format version {version}")
    if kdf != KDF_ARGON2ID:
        raise CorruptedStorageError(f"key file: unknown KDF {kdf}")
    params = params_from_file(t, m, p)
    if not (MIN_SALT <= salt_len <= MAX_SALT):
        raise CorruptedStorageError("key file: bad salt length")
    pos = _FIXED.size
    salt = data[pos : pos + salt_len]
    pos += salt_len
    if len(data) < pos + 2:
        raise CorruptedStorageError("key file: truncated header")
    (name_len,) = struct.unpack_from(">H", data, pos)
    pos += 2
    if not (1 <= name_len <= MAX_NAME_BYTES):
        raise CorruptedStorageError("key file: bad name length")
    end = pos + name_len + NONCE_LEN + VERIFIER_LEN + CHECKSUM_LEN
    if len(data) < end + TAG_LEN:
        raise CorruptedStorageError("key file: truncated")
    name_raw = data[pos : pos + name_len]
    pos += name_len
    nonce = data[pos : pos + NONCE_LEN]
    pos += NONCE_LEN
    verifier = data[pos : pos + VERIFIER_LEN]
    pos += VERIFIER_LEN
    checksum = data[pos : pos + CHECKSUM_LEN]
    if not hmac.compare_digest(hashlib.sha256(data[:pos]).digest()[:CHECKSUM_LEN], checksum):
        raise CorruptedStorageError("key file: header checksum mismatch")
    try:
        name = check_name(name_raw.decode("utf-8"))
    except (UnicodeDecodeError, KeyStorageError):
        raise CorruptedStorageError("key file: bad entry name") from None
    header = KeyFileHeader(params, salt, name, nonce, verifier, data[:end])
    return header, data[end:]


def seal_key_file(
    entry: KeyEntry,
    password: str | bytes,
    params: Argon2Params = DEFAULT_PARAMS,
    *,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """Serialise and encrypt `entry` under `password`; returns the whole file's bytes."""
    name_raw = check_name(entry.name).encode("utf-8")
    salt = os.urandom(16) if salt is None else salt
    nonce = os.urandom(NONCE_LEN) if nonce is None else nonce
    if not (MIN_SALT <= len(salt) <= MAX_SALT) or len(nonce) != NONCE_LEN:
        raise KeyStorageError("bad salt or nonce length")
    if not isinstance(params, Argon2Params):
        raise KeyStorageError(
            f"params must be twilio_e2ee.storage.Argon2Params, got {type(params).__name__}"
        )
    key, verifier = _derive(password_bytes(password), salt, params)
    head = (
        _FIXED.pack(
            MAGIC,
            FORMAT_VERSION,
            KDF_ARGON2ID,
            params.time_cost,
            params.memory_kib,
            params.parallelism,
            len(salt),
        )
        + salt
        + struct.pack(">H", len(name_raw))
        + name_raw
        + nonce
        + verifier
    )
    header = head + hashlib.sha256(head).digest()[:CHECKSUM_LEN]
    payload = {
        "version": FORMAT_VERSION,
        "name": entry.name,
        "private_key": base64.b64encode(entry.private_key.der).decode("ascii"),
        "meta": dict(entry.meta) if entry.meta is not None else None,
        "created_at": entry.created_at,
        "modified_at": entry.modified_at,
    }
    plaintext = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return header + AESGCM(key).encrypt(nonce, plaintext, header)


def open_key_file(
    data: bytes, password: str | bytes, *, expected_name: str | None = None
) -> KeyEntry:
    """Decrypt a key file; WrongPasswordError or CorruptedStorageError (never a bare exception)."""
    header, ciphertext = parse_header(data)
    if expected_name is not None and header.name != expected_name:
        raise CorruptedStorageError(
            f"key file holds entry {header.name!r}, expected {expected_name!r}"
        )
    key, verifier = _derive(password_bytes(password), header.salt, header.params)
    if not hmac.compare_digest(verifier, header.verifier):
        raise WrongPasswordError(f"wrong password for key {header.name!r}")
    try:
        plaintext = AESGCM(key).decrypt(header.nonce, ciphertext, header.raw)
    except InvalidTag:
        raise CorruptedStorageError(
            f"key file for {header.name!r}: ciphertext damaged (authentication failed)"
        ) from None
    return _entry_from_payload(plaintext, header.name)


def _entry_from_payload(plaintext: bytes, name: str) -> KeyEntry:
    try:
        payload: Any = json.loads(plaintext.decode("utf-8"))
        if not isinstance(payload, dict) or payload.get("version") != FORMAT_VERSION:
            raise ValueError("bad payload")
        if payload.get("name") != name:
            raise ValueError("name mismatch")
        key: PrivateKey = import_private_key(
            base64.b64decode(payload["private_key"], validate=True)
        )
        meta = check_meta(payload.get("meta"))
        created, modified = float(payload["created_at"]), float(payload["modified_at"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, binascii.Error, E2EEError):
        raise CorruptedStorageError(f"key file for {name!r}: bad payload") from None
    return KeyEntry(name, key, meta, created, modified)
