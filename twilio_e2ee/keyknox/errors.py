"""Errors of the Keyknox client and of the password-backup blob format.

Each class derives from the matching branch of :mod:`twilio_e2ee.errors`, so callers can catch
either the narrow Keyknox type or the package-wide one.
"""

from __future__ import annotations

from twilio_e2ee.errors import (
    AuthenticationError,
    CorruptedStorageError,
    EThreeError,
    ServiceError,
    ServiceUnavailableError,
    WrongPasswordError,
)

__all__ = [
    "BackupIntegrityError",
    "CorruptedBackupError",
    "KeyknoxAuthenticationError",
    "KeyknoxEntryNotFoundError",
    "KeyknoxError",
    "KeyknoxHashMismatchError",
    "KeyknoxUnavailableError",
    "PythiaBackupNotSupportedError",
    "WrongKeyknoxPasswordError",
]

# Virgil's Keyknox error codes (research/virgil.md §1.2).
CODE_TOKEN_EXPIRED = 20304
CODE_INVALID_PREVIOUS_HASH = 50010
CODE_NO_KEY_DATA = 50017


class KeyknoxError(ServiceError):
    """The Keyknox service answered with an error; ``code`` is Virgil's error code."""


class KeyknoxAuthenticationError(KeyknoxError, AuthenticationError):
    """Keyknox refused the Virgil JWT (401/403). Check the token callback and the app id/key."""


class KeyknoxUnavailableError(KeyknoxError, ServiceUnavailableError):
    """Keyknox could not be reached, or answered 5xx / 429."""


class KeyknoxHashMismatchError(KeyknoxError):
    """The entry changed since it was pulled (Virgil code 50010): pull again, then retry."""


class KeyknoxEntryNotFoundError(KeyknoxError):
    """Nothing is stored under that root/path/key (Virgil code 50017, or an empty value)."""


class CorruptedBackupError(CorruptedStorageError):
    """A Keyknox backup blob is truncated, of an unknown version, or has unacceptable parameters."""


class BackupIntegrityError(CorruptedBackupError):
    """A backup blob's signature does not verify: it was modified after it was written."""


class PythiaBackupNotSupportedError(CorruptedBackupError):
    """The backup was written by Virgil's E3Kit with a Pythia brain key, which we cannot open."""


class WrongKeyknoxPasswordError(WrongPasswordError, EThreeError):
    """The password does not open the backup (E3Kit's WrongKeyknoxPasswordError)."""
