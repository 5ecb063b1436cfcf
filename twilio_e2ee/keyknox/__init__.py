"""Keyknox v2 client and the password-backup blob format (Argon2id, AES-256-GCM, signed)."""

from twilio_e2ee.keyknox.backup import (
    BACKUP_PATH,
    BACKUP_ROOT,
    DEFAULT_KEY_NAME,
    MINIMUM_PARAMS,
    Argon2Params,
    BackupBlob,
    BackupHeader,
    is_e3kit_pythia_backup,
    open_backup,
    parse_header,
    seal_backup,
)
from twilio_e2ee.keyknox.client import (
    DEFAULT_API_URL,
    AsyncKeyknoxClient,
    KeyknoxClient,
    KeyknoxValue,
)
from twilio_e2ee.keyknox.errors import (
    BackupIntegrityError,
    CorruptedBackupError,
    KeyknoxAuthenticationError,
    KeyknoxEntryNotFoundError,
    KeyknoxError,
    KeyknoxHashMismatchError,
    KeyknoxUnavailableError,
    PythiaBackupNotSupportedError,
    WrongKeyknoxPasswordError,
)

__all__ = [
    "BACKUP_PATH",
    "BACKUP_ROOT",
    "DEFAULT_API_URL",
    "DEFAULT_KEY_NAME",
    "MINIMUM_PARAMS",
    "Argon2Params",
    "AsyncKeyknoxClient",
    "BackupBlob",
    "BackupHeader",
    "BackupIntegrityError",
    "CorruptedBackupError",
    "KeyknoxAuthenticationError",
    "KeyknoxClient",
    "KeyknoxEntryNotFoundError",
    "KeyknoxError",
    "KeyknoxHashMismatchError",
    "KeyknoxUnavailableError",
    "KeyknoxValue",
    "PythiaBackupNotSupportedError",
    "WrongKeyknoxPasswordError",
    "is_e3kit_pythia_backup",
    "open_backup",
    "parse_header",
    "seal_backup",
]
