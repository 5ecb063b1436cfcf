"""A directory of password-encrypted key files (0600), written atomically.

One file per entry, named ``<sha256(name)[:32] hex>.key``; the entry name itself is inside the
authenticated header (see :mod:`twilio_e2ee.storage.fileformat`). Writes go through
:func:`twilio_e2ee.atomic_file.atomic_write` (temporary 0600 file, fsync, ``os.link`` for a new
entry so a concurrent creator is never clobbered, ``os.replace`` when replacing, directory
fsync): a crash at any step leaves the old file or the new one, plus at worst a stray ``.tmp``
file that every operation ignores.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from twilio_e2ee.atomic_file import atomic_write, fsync_dir
from twilio_e2ee.crypto.keys import PrivateKey
from twilio_e2ee.errors import (
    CorruptedStorageError,
    KeyEntryExistsError,
    KeyEntryNotFoundError,
    KeyStorageError,
)
from twilio_e2ee.storage.base import KeyEntry, check_key, check_meta, check_name
from twilio_e2ee.storage.fileformat import (
    DEFAULT_PARAMS,
    Argon2Params,
    open_key_file,
    parse_header,
    password_bytes,
    seal_key_file,
)

__all__ = ["EncryptedFileKeyStore"]

SUFFIX = ".key"
MAX_FILE_SIZE = 64 * 1024


class EncryptedFileKeyStore:
    """Private keys encrypted under a password (Argon2id + AES-256-GCM), one 0600 file each."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        password: str | bytes,
        *,
        params: Argon2Params = DEFAULT_PARAMS,
    ) -> None:
        if not isinstance(password, (str, bytes)) or not password:
            raise KeyStorageError("a non-empty password is required")
        self.directory = Path(directory)
        self._password = password_bytes(password)
        self.params = params
        self._lock = threading.Lock()
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyStorageError(f"cannot create key directory {self.directory}: {exc}") from None
        if not self.directory.is_dir():
            raise KeyStorageError(f"{self.directory} is not a directory")

    def path_for(self, name: str) -> Path:
        """The file that holds entry `name`."""
        digest = hashlib.sha256(check_name(name).encode("utf-8")).hexdigest()[:32]
        return self.directory / (digest + SUFFIX)

    # --- reading ---------------------------------------------------------------------------

    def _read(self, path: Path) -> bytes | None:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_SIZE + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyStorageError(f"cannot read {path}: {exc}") from None
        if len(data) > MAX_FILE_SIZE:
            raise CorruptedStorageError(f"{path.name}: larger than any key file")
        return data

    def load(self, name: str) -> KeyEntry:
        """Decrypt and return entry `name` (WrongPasswordError / CorruptedStorageError)."""
        data = self._read(self.path_for(name))
        if data is None:
            raise KeyEntryNotFoundError(f"no key named {name!r}")
        return open_key_file(data, self._password, expected_name=name)

    def exists(self, name: str) -> bool:
        return self.path_for(name).is_file()

    def list(self) -> list[str]:
        """Names of stored entries (read from the headers; unreadable files are skipped)."""
        names = []
        for path in self.directory.glob("*" + SUFFIX):
            data = self._read(path)
            if data is None:
                continue
            try:
                header, _ = parse_header(data)
            except CorruptedStorageError:
                continue
            if self.path_for(header.name) == path:
                names.append(header.name)
        return sorted(names)

    # --- writing ---------------------------------------------------------------------------

    def save(
        self,
        name: str,
        private_key: PrivateKey,
        meta: Mapping[str, str] | None = None,
        *,
        replace: bool = False,
    ) -> KeyEntry:
        """Encrypt and store; KeyEntryExistsError if `name` exists, unless `replace=True`."""
        name = check_name(name)
        key = check_key(private_key)
        clean_meta = check_meta(meta)
        target = self.path_for(name)
        with self._lock:
            now = time.time()
            created = now
            if target.exists():
                if not replace:
                    raise KeyEntryExistsError(f"a key named {name!r} is already stored")
                with contextlib.suppress(KeyStorageError):
                    created = self.load(name).created_at
            entry = KeyEntry(name, key, clean_meta, created, now)
            blob = seal_key_file(entry, self._password, self.params)
            self._atomic_write(target, blob, replace=replace)
        return entry

    def _atomic_write(self, target: Path, blob: bytes, *, replace: bool) -> None:
        try:
            atomic_write(target, blob, replace=replace)
        except FileExistsError:
            raise KeyEntryExistsError(f"a key named {target.name} appeared concurrently") from None
        except OSError as exc:
            raise KeyStorageError(f"cannot write {target}: {exc}") from None

    def delete(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove entry `name` (KeyEntryNotFoundError if absent, unless `missing_ok`)."""
        path = self.path_for(name)
        with self._lock:
            try:
                os.unlink(path)
            except FileNotFoundError:
                if missing_ok:
                    return
                raise KeyEntryNotFoundError(f"no key named {name!r}") from None
            except OSError as exc:
                raise KeyStorageError(f"cannot delete {path}: {exc}") from None
            with contextlib.suppress(OSError):  # the entry is gone; durability is best effort
                fsync_dir(self.directory)

    def __repr__(self) -> str:
        return f"EncryptedFileKeyStore({str(self.directory)!r})"
