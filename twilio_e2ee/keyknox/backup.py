"""The password-backup blob: a private key encrypted under a password, for Keyknox (sans-I/O).

E3Kit derives the backup key from the password with Virgil's Pythia service (a server-side OPRF).
This project does not reproduce Pythia; instead the key-encryption key comes from Argon2id with a
fresh random salt per backup, and the blob says which parameters were used, so they can be raised
later without breaking old backups. Format, version 1 (all integers big-endian)::

    meta  = "TE2EBK" | version (1) = 0x01 | kdf (1) = 0x01 Argon2id v1.3
            | time_cost (u32) | memory_kib (u32) | parallelism (u32)
            | salt_len (1) | salt | aead (1) = 0x01 AES-256-GCM | nonce (12)
            | signer public key (32, raw Ed25519)
    value = AES-256-GCM(KEK, nonce, PKCS#8 private key, AAD = meta | context) | signature (83)

``context`` binds the blob to its owner and Keyknox location (identity, root, path, key), so a blob
cannot be moved to another user or key name. ``signature`` is a Virgil signature (Ed25519 over
SHA-512) by the backed-up key itself over meta, context and ciphertext: tampering with any byte is
reported as :class:`BackupIntegrityError` *before* the password is tried, and a wrong password is
:class:`WrongKeyknoxPasswordError`. A blob written by E3Kit (meta = a Virgil message info from
signThenEncryptDetached under a Pythia brain key) raises :class:`PythiaBackupNotSupportedError`.
"""

from __future__ import annotations

import os
import struct
import unicodedata
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twilio_e2ee.crypto.kdf import (
    MAX_MEMORY_KIB,
    MAX_PARALLELISM,
    MAX_TIME_COST,
    MIN_PARALLELISM,
    Argon2ParameterError,
    Argon2Params,
)
from twilio_e2ee.crypto.keys import PrivateKey, PublicKey, import_private_key
from twilio_e2ee.crypto.message_info import parse_message_info
from twilio_e2ee.crypto.signatures import SIGNATURE_LENGTH, check_signature, sign
from twilio_e2ee.errors import (
    ConfigurationError,
    E2EEError,
    MalformedInputError,
    SignatureError,
)
from twilio_e2ee.keyknox.errors import (
    BackupIntegrityError,
    CorruptedBackupError,
    PythiaBackupNotSupportedError,
    WrongKeyknoxPasswordError,
)

__all__ = [
    "BACKUP_PATH",
    "BACKUP_ROOT",
    "DEFAULT_KEY_NAME",
    "MINIMUM_PARAMS",
    "Argon2Params",
    "BackupBlob",
    "BackupHeader",
    "is_e3kit_pythia_backup",
    "open_backup",
    "params_problem",
    "parse_header",
    "seal_backup",
]

BACKUP_ROOT = "e3kit"
BACKUP_PATH = "backup"
DEFAULT_KEY_NAME = "default"

MAGIC = b"TE2EBK"
VERSION = 1
KDF_ARGON2ID = 1
AEAD_AES256_GCM = 1
NONCE_LENGTH = 12
TAG_LENGTH = 16
KEY_LENGTH = 32
SALT_LENGTH = 16
_FIXED = struct.Struct(">6sBBIIIB")  # magic, version, kdf, t, m, p, salt_len
_SIGNATURE_DOMAIN = b"twilio_e2ee keyknox backup signature v1\x00"
# DER of the CMS envelopedData OID (1.2.840.113549.1.7.3): every Virgil message info carries it.
_ENVELOPED_DATA_OID = bytes.fromhex("06092a864886f70d010703")


def params_problem(params: object) -> str | None:
    """The backup policy: why ``params`` may not protect a backup (on write and on read), or None.

    :class:`Argon2Params` already caps the work (t 64, 4 GiB, p 64); on top, anything below
    OWASP's floor (:data:`MINIMUM_PARAMS`: t=2, 19 MiB, p=1) is refused.
    """
    if not isinstance(params, Argon2Params):
        return f"expected twilio_e2ee.keyknox.Argon2Params, got {type(params).__name__}"
    t, m, p = params.time_cost, params.memory_kib, params.parallelism
    if t < MINIMUM_PARAMS.time_cost or m < MINIMUM_PARAMS.memory_kib:
        return _out_of_range(t, m, p, "below OWASP's floor")
    return None


def _out_of_range(t: object, m: object, p: object, why: str) -> str:
    return (
        f"Argon2id parameters t={t}, m={m} KiB, p={p} are outside the accepted range "
        f"(t {MINIMUM_PARAMS.time_cost}..{MAX_TIME_COST}, "
        f"m {MINIMUM_PARAMS.memory_kib // 1024} MiB..{MAX_MEMORY_KIB // 1024 // 1024} GiB, "
        f"p {MIN_PARALLELISM}..{MAX_PARALLELISM}): {why}"
    )


MINIMUM_PARAMS = Argon2Params(time_cost=2, memory_kib=19 * 1024, parallelism=1)
"""OWASP's Argon2id floor: the cheapest parameters a backup may use."""


@dataclass(frozen=True)
class BackupHeader:
    """The clear part of a blob (what the Keyknox server sees besides the ciphertext)."""

    version: int
    params: Argon2Params
    salt: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    signer: PublicKey
    raw: bytes = field(repr=False)


@dataclass(frozen=True)
class BackupBlob:
    """What goes into a Keyknox entry: ``meta`` and ``value``."""

    meta: bytes = field(repr=False)
    value: bytes = field(repr=False)


def password_bytes(password: str | bytes) -> bytes:
    """The password as bytes: text is NFC-normalised UTF-8, so every device derives the same key."""
    if isinstance(password, str):
        try:
            data = unicodedata.normalize("NFC", password).encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedInputError(
                "backup password is not valid text (it holds a lone surrogate)"
            ) from None
    elif isinstance(password, (bytes, bytearray)):
        data = bytes(password)
    else:
        raise MalformedInputError(
            f"backup password must be a str (or bytes), got {type(password).__name__}"
        )
    if not data:
        raise MalformedInputError("backup password must not be empty")
    return data


def _context(identity: str, root: str, path: str, key: str) -> bytes:
    out = bytearray()
    for part in (identity, root, path, key):
        if not isinstance(part, str) or not part:
            raise MalformedInputError("backup identity, root, path and key must be non-empty str")
        encoded = part.encode("utf-8")
        out += struct.pack(">H", len(encoded)) + encoded
    return bytes(out)


def is_e3kit_pythia_backup(meta: bytes) -> bool:
    """True when ``meta`` is a Virgil message info (an E3Kit/Keyknox signThenEncrypt entry).

    Keyknox entries written by Virgil's SDKs are ``signThenEncryptDetached`` outputs: the meta is
    the message info alone. A damaged one is still recognised by its envelopedData OID.
    """
    if not isinstance(meta, (bytes, bytearray, memoryview)):
        return False
    meta = bytes(meta)
    if len(meta) < 16 or meta[0] != 0x30:
        return False
    try:
        parse_message_info(meta)
    except E2EEError:
        return _ENVELOPED_DATA_OID in meta[:64]
    return True


def parse_header(meta: bytes) -> BackupHeader:
    """Parse and check the clear header of a blob (raises CorruptedBackupError and subclasses)."""
    if not isinstance(meta, (bytes, bytearray, memoryview)):
        raise CorruptedBackupError(f"backup meta must be bytes, got {type(meta).__name__}")
    meta = bytes(meta)
    if not meta.startswith(MAGIC):
        if is_e3kit_pythia_backup(meta):
            raise PythiaBackupNotSupportedError(
                "this backup was written by Virgil's E3Kit, whose backups are encrypted under a "
                "Pythia brain key; Pythia backups are not supported by twilio_e2ee. Restore it "
                "with E3Kit, then back the key up again with twilio_e2ee (or use another key name)"
            )
        raise CorruptedBackupError("not a twilio_e2ee key backup (unknown format)")
    if len(meta) < _FIXED.size:
        raise CorruptedBackupError("backup header is truncated")
    _, version, kdf, t, m, p, salt_len = _FIXED.unpack_from(meta)
    if version != VERSION:
        raise CorruptedBackupError(
            f"backup format version {version} is not supported by this version of twilio_e2ee "
            "(upgrade the package to read it)"
        )
    if kdf != KDF_ARGON2ID:
        raise CorruptedBackupError(f"unknown backup KDF id {kdf}")
    try:
        params = Argon2Params(t, m, p)
    except Argon2ParameterError as exc:
        raise CorruptedBackupError(f"refusing backup: {_out_of_range(t, m, p, str(exc))}") from None
    problem = params_problem(params)
    if problem:
        raise CorruptedBackupError(f"refusing backup: {problem}")
    if not 16 <= salt_len <= 64:
        raise CorruptedBackupError(f"backup salt length {salt_len} is not in 16..64")
    offset = _FIXED.size
    expected = offset + salt_len + 1 + NONCE_LENGTH + 32
    if len(meta) != expected:
        raise CorruptedBackupError(f"backup header has {len(meta)} bytes, expected {expected}")
    salt = meta[offset : offset + salt_len]
    offset += salt_len
    if meta[offset] != AEAD_AES256_GCM:
        raise CorruptedBackupError(f"unknown backup cipher id {meta[offset]}")
    nonce = meta[offset + 1 : offset + 1 + NONCE_LENGTH]
    offset += 1 + NONCE_LENGTH
    try:
        signer = PublicKey.from_raw(meta[offset : offset + 32])
    except E2EEError as exc:
        raise CorruptedBackupError(f"backup signer key is unusable: {exc}") from None
    return BackupHeader(VERSION, params, salt, nonce, signer, meta)


def seal_backup(
    private_key: PrivateKey,
    password: str | bytes,
    *,
    identity: str,
    key_name: str = DEFAULT_KEY_NAME,
    root: str = BACKUP_ROOT,
    path: str = BACKUP_PATH,
    params: Argon2Params | None = None,
) -> BackupBlob:
    """Encrypt and sign ``private_key`` under ``password`` for ``identity``'s Keyknox entry."""
    if not isinstance(private_key, PrivateKey):
        raise MalformedInputError(
            f"seal_backup: expected a PrivateKey, got {type(private_key).__name__}"
        )
    params = Argon2Params() if params is None else params
    problem = params_problem(params)
    if problem:
        raise ConfigurationError(f"backup KDF parameters refused: {problem}")
    secret = password_bytes(password)
    context = _context(identity, root, path, key_name)
    salt, nonce = os.urandom(SALT_LENGTH), os.urandom(NONCE_LENGTH)
    meta = (
        _FIXED.pack(
            MAGIC,
            VERSION,
            KDF_ARGON2ID,
            params.time_cost,
            params.memory_kib,
            params.parallelism,
            len(salt),
        )
        + salt
        + bytes([AEAD_AES256_GCM])
        + nonce
        + private_key.public_key.raw
    )
    kek = params.derive(secret, salt, KEY_LENGTH)
    ciphertext = AESGCM(kek).encrypt(nonce, private_key.der, meta + context)
    signature = sign(_SIGNATURE_DOMAIN + meta + context + ciphertext, private_key)
    return BackupBlob(meta, ciphertext + signature)


def open_backup(
    meta: bytes,
    value: bytes,
    password: str | bytes,
    *,
    identity: str,
    key_name: str = DEFAULT_KEY_NAME,
    root: str = BACKUP_ROOT,
    path: str = BACKUP_PATH,
) -> PrivateKey:
    """Check and decrypt a blob written by :func:`seal_backup`; return the private key.

    Raises PythiaBackupNotSupportedError (E3Kit's own format), CorruptedBackupError (unknown or
    damaged), BackupIntegrityError (modified after it was written, or moved to another
    owner/key name) and WrongKeyknoxPasswordError (the password does not open it).
    """
    header = parse_header(meta)
    secret = password_bytes(password)
    context = _context(identity, root, path, key_name)
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise CorruptedBackupError(f"backup value must be bytes, got {type(value).__name__}")
    value = bytes(value)
    if len(value) < TAG_LENGTH + SIGNATURE_LENGTH + 1:
        raise CorruptedBackupError("backup value is truncated")
    ciphertext, signature = value[:-SIGNATURE_LENGTH], value[-SIGNATURE_LENGTH:]
    try:
        check_signature(
            _SIGNATURE_DOMAIN + header.raw + context + ciphertext, signature, header.signer
        )
    except (SignatureError, MalformedInputError):
        raise BackupIntegrityError(
            "the backup's signature does not verify: it was modified after it was written, or "
            "belongs to another user or key name. Do not use it; back the key up again from a "
            "device that has it"
        ) from None
    kek = header.params.derive(secret, header.salt, KEY_LENGTH)
    try:
        plaintext = AESGCM(kek).decrypt(header.nonce, ciphertext, header.raw + context)
    except InvalidTag:
        raise WrongKeyknoxPasswordError(
            "the backup password is wrong: try again with the password used for "
            "backup_private_key / change_password"
        ) from None
    try:
        key = import_private_key(plaintext)
    except E2EEError as exc:
        raise CorruptedBackupError(f"backup holds no usable private key: {exc}") from None
    if key.public_key != header.signer:
        raise BackupIntegrityError("the backed-up key is not the key that signed the backup")
    return key
