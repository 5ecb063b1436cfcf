"""Local private-key storage (E3Kit's key entry storage), never in the clear.

- :class:`EncryptedFileKeyStore`: 0600 files, Argon2id + AES-256-GCM, atomic writes.
- :class:`KeyringKeyStore`: the OS keyring through the `keyring` package.
- :class:`MemoryKeyStore`: in memory, for notebooks and tests.

All implement the :class:`KeyStore` protocol and raise the key-storage errors of
:mod:`twilio_e2ee.errors` (KeyEntryExistsError, KeyEntryNotFoundError, WrongPasswordError,
CorruptedStorageError).
"""

from twilio_e2ee.storage.base import KeyEntry, KeyStore
from twilio_e2ee.storage.file import EncryptedFileKeyStore
from twilio_e2ee.storage.fileformat import DEFAULT_PARAMS, Argon2Params
from twilio_e2ee.storage.keyring_store import (
    KeyringKeyStore,
    KeyringUnavailableError,
    keyring_available,
)
from twilio_e2ee.storage.memory import MemoryKeyStore

__all__ = [
    "DEFAULT_PARAMS",
    "Argon2Params",
    "EncryptedFileKeyStore",
    "KeyEntry",
    "KeyStore",
    "KeyringKeyStore",
    "KeyringUnavailableError",
    "MemoryKeyStore",
    "keyring_available",
]
