"""The key-store protocol (E3Kit's key entry storage) and the entry type every store returns."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from twilio_e2ee.crypto.keys import PrivateKey
from twilio_e2ee.errors import KeyStorageError

__all__ = ["MAX_NAME_BYTES", "KeyEntry", "KeyStore", "check_meta", "check_name"]

MAX_NAME_BYTES = 1024


@dataclass(frozen=True)
class KeyEntry:
    """A stored private key with its name, string metadata and timestamps (Unix seconds)."""

    name: str
    private_key: PrivateKey
    meta: Mapping[str, str] | None = None
    created_at: float = field(default_factory=time.time)
    modified_at: float = field(default_factory=time.time)


@runtime_checkable
class KeyStore(Protocol):
    """Where a user's private keys live locally, by name (E3Kit stores one per identity)."""

    def save(
        self,
        name: str,
        private_key: PrivateKey,
        meta: Mapping[str, str] | None = None,
        *,
        replace: bool = False,
    ) -> KeyEntry:
        """Store a key; raise KeyEntryExistsError if `name` exists unless `replace`."""
        ...

    def load(self, name: str) -> KeyEntry:
        """Return the entry; raise KeyEntryNotFoundError if there is none."""
        ...

    def exists(self, name: str) -> bool:
        """Whether an entry named `name` exists."""
        ...

    def delete(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove an entry; raise KeyEntryNotFoundError if absent unless `missing_ok`."""
        ...

    def list(self) -> list[str]:
        """Names of all stored entries, sorted."""
        ...


def check_name(name: object) -> str:
    """Validate an entry name: a non-empty str of at most MAX_NAME_BYTES UTF-8 bytes, no NUL."""
    if not isinstance(name, str) or not name:
        raise KeyStorageError("key entry name must be a non-empty string")
    if "\x00" in name:
        raise KeyStorageError("key entry name must not contain NUL")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise KeyStorageError("key entry name is not encodable as UTF-8") from None
    if size > MAX_NAME_BYTES:
        raise KeyStorageError(f"key entry name longer than {MAX_NAME_BYTES} bytes")
    return name


def check_meta(meta: object) -> dict[str, str] | None:
    """Validate metadata: None or a mapping of str to str (as E3Kit's key entry meta)."""
    if meta is None:
        return None
    if not isinstance(meta, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
    ):
        raise KeyStorageError("key entry meta must be a mapping of str to str")
    return dict(meta)


def check_key(private_key: object) -> PrivateKey:
    if not isinstance(private_key, PrivateKey):
        raise KeyStorageError(f"expected a PrivateKey, got {type(private_key).__name__}")
    return private_key
