"""Private keys in the OS keyring (macOS Keychain, Windows Credential Locker, Secret Service).

The keyring encrypts at rest and unlocks with the user's login, so entries are stored directly:
one secret per entry (JSON: PKCS#8 base64, meta, timestamps) under ``service``, plus an index
secret listing the names, because keyring backends cannot enumerate.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

import keyring
import keyring.errors

from twilio_e2ee.crypto.keys import PrivateKey, import_private_key
from twilio_e2ee.errors import (
    CorruptedStorageError,
    E2EEError,
    KeyEntryExistsError,
    KeyEntryNotFoundError,
    KeyStorageError,
)
from twilio_e2ee.storage.base import KeyEntry, check_key, check_meta, check_name

__all__ = ["DEFAULT_SERVICE", "KeyringKeyStore", "KeyringUnavailableError", "keyring_available"]

DEFAULT_SERVICE = "twilio_e2ee"
_INDEX = "\x00index"  # never a valid entry name (names cannot contain NUL)
_VERSION = 1


class KeyringUnavailableError(KeyStorageError):
    """No usable OS keyring backend is installed or unlocked."""


def keyring_available(backend: Any = None) -> bool:
    """Whether `backend` (default: keyring's choice) can store secrets."""
    kr = backend if backend is not None else keyring.get_keyring()
    return float(getattr(kr, "priority", 0) or 0) > 0 and "fail" not in type(kr).__module__


class KeyringKeyStore:
    """Key entries as OS-keyring secrets under one service name."""

    def __init__(self, service: str = DEFAULT_SERVICE, *, backend: Any = None) -> None:
        self.service = service
        self._kr = backend if backend is not None else keyring.get_keyring()
        if not keyring_available(self._kr):
            raise KeyringUnavailableError(
                f"no usable OS keyring backend ({type(self._kr).__name__}); "
                "use EncryptedFileKeyStore instead"
            )
        self._lock = threading.Lock()

    def _get(self, username: str) -> str | None:
        try:
            value = self._kr.get_password(self.service, username)
        except keyring.errors.KeyringError as exc:
            raise KeyStorageError(f"keyring read failed: {exc}") from None
        return value if isinstance(value, str) else None

    def _set(self, username: str, value: str) -> None:
        try:
            self._kr.set_password(self.service, username, value)
        except keyring.errors.KeyringError as exc:
            raise KeyStorageError(f"keyring write failed: {exc}") from None

    def _index(self) -> list[str]:
        raw = self._get(_INDEX)
        if raw is None:
            return []
        try:
            names = json.loads(raw)
        except ValueError:
            raise CorruptedStorageError("keyring index is not JSON") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CorruptedStorageError("keyring index is malformed")
        return names

    def save(
        self,
        name: str,
        private_key: PrivateKey,
        meta: Mapping[str, str] | None = None,
        *,
        replace: bool = False,
    ) -> KeyEntry:
        name = check_name(name)
        key = check_key(private_key)
        clean_meta = check_meta(meta)
        with self._lock:
            now = time.time()
            created = now
            if self._get(name) is not None:
                if not replace:
                    raise KeyEntryExistsError(f"a key named {name!r} is already stored")
                with contextlib.suppress(KeyStorageError):
                    created = self.load(name).created_at
            entry = KeyEntry(name, key, clean_meta, created, now)
            record = {
                "version": _VERSION,
                "private_key": base64.b64encode(key.der).decode("ascii"),
                "meta": clean_meta,
                "created_at": created,
                "modified_at": now,
            }
            self._set(name, json.dumps(record, separators=(",", ":")))
            names = self._index()
            if name not in names:
                self._set(_INDEX, json.dumps(sorted([*names, name])))
        return entry

    def load(self, name: str) -> KeyEntry:
        name = check_name(name)
        raw = self._get(name)
        if raw is None:
            raise KeyEntryNotFoundError(f"no key named {name!r}")
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or record.get("version") != _VERSION:
                raise ValueError("bad record")
            key = import_private_key(base64.b64decode(record["private_key"], validate=True))
            meta = check_meta(record.get("meta"))
            return KeyEntry(
                name, key, meta, float(record["created_at"]), float(record["modified_at"])
            )
        except (ValueError, KeyError, TypeError, binascii.Error, E2EEError):
            raise CorruptedStorageError(f"keyring entry {name!r} is damaged") from None

    def exists(self, name: str) -> bool:
        return self._get(check_name(name)) is not None

    def delete(self, name: str, *, missing_ok: bool = False) -> None:
        name = check_name(name)
        with self._lock:
            if self._get(name) is None:
                if missing_ok:
                    return
                raise KeyEntryNotFoundError(f"no key named {name!r}")
            try:
                self._kr.delete_password(self.service, name)
            except keyring.errors.PasswordDeleteError:
                pass
            except keyring.errors.KeyringError as exc:
                raise KeyStorageError(f"keyring delete failed: {exc}") from None
            names = [n for n in self._index() if n != name]
            self._set(_INDEX, json.dumps(names))

    def list(self) -> list[str]:
        return sorted(n for n in self._index() if self._get(n) is not None)

    def __repr__(self) -> str:
        return f"KeyringKeyStore(service={self.service!r}, backend={type(self._kr).__name__})"
