"""An in-memory key store for notebooks and tests (nothing touches the disk)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from twilio_e2ee.crypto.keys import PrivateKey
from twilio_e2ee.errors import KeyEntryExistsError, KeyEntryNotFoundError
from twilio_e2ee.storage.base import KeyEntry, check_key, check_meta, check_name

__all__ = ["MemoryKeyStore"]


class MemoryKeyStore:
    """A thread-safe dict of key entries, lost when the process ends."""

    def __init__(self) -> None:
        self._entries: dict[str, KeyEntry] = {}
        self._lock = threading.Lock()

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
        now = time.time()
        with self._lock:
            old = self._entries.get(name)
            if old is not None and not replace:
                raise KeyEntryExistsError(f"a key named {name!r} is already stored")
            created = old.created_at if old is not None else now
            entry = KeyEntry(name, key, clean_meta, created, now)
            self._entries[name] = entry
        return entry

    def load(self, name: str) -> KeyEntry:
        with self._lock:
            entry = self._entries.get(check_name(name))
        if entry is None:
            raise KeyEntryNotFoundError(f"no key named {name!r}")
        return entry

    def exists(self, name: str) -> bool:
        with self._lock:
            return check_name(name) in self._entries

    def delete(self, name: str, *, missing_ok: bool = False) -> None:
        with self._lock:
            if self._entries.pop(check_name(name), None) is None and not missing_ok:
                raise KeyEntryNotFoundError(f"no key named {name!r}")

    def list(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def __repr__(self) -> str:
        return f"MemoryKeyStore({len(self._entries)} entries)"
