"""Where pinned cards live: in memory, in a JSON file (atomic writes), or in SQLite.

A pin record keeps the pinned card in Virgil's exported string form (so its signatures can be
re-checked), when it was pinned, and the ids of cards previously pinned for that identity (to
detect a roll-back to an old card). On load, the stored card id must match the stored card; any
damage raises :class:`PinStoreError`, and a damaged file is never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from twilio_e2ee.atomic_file import atomic_write
from twilio_e2ee.cards.errors import MalformedCardError, PinStoreError
from twilio_e2ee.cards.model import Card, import_card

__all__ = ["JsonFilePinStore", "MemoryPinStore", "PinRecord", "PinStore", "SqlitePinStore"]

_FORMAT = "twilio_e2ee-card-pins"
_VERSION = 1


@dataclass(frozen=True)
class PinRecord:
    """The card pinned for an identity."""

    identity: str
    card: Card
    pinned_at: float
    history: tuple[str, ...] = field(default=())  # ids of earlier pinned cards, oldest first

    def to_json(self) -> dict[str, Any]:
        return {
            "card": self.card.export(),
            "card_id": self.card.id,
            "pinned_at": self.pinned_at,
            "history": list(self.history),
        }

    @classmethod
    def from_json(cls, identity: str, data: Mapping[str, Any]) -> PinRecord:
        try:
            card = import_card(data["card"])
            card_id = data["card_id"]
            pinned_at = float(data["pinned_at"])
            history = tuple(data.get("history", ()))
        except (KeyError, TypeError, ValueError, MalformedCardError) as exc:
            raise PinStoreError(f"pin of {identity!r} is damaged: {exc}") from None
        if card.id != card_id or card.identity != identity:
            raise PinStoreError(f"pin of {identity!r} is damaged: card does not match its record")
        if not all(isinstance(h, str) for h in history):
            raise PinStoreError(f"pin of {identity!r} is damaged: bad history")
        return cls(identity, card, pinned_at, history)


class PinStore(Protocol):
    """Storage of pin records, one per identity."""

    def get(self, identity: str) -> PinRecord | None: ...

    def put(self, record: PinRecord) -> None: ...

    def delete(self, identity: str) -> None: ...

    def identities(self) -> list[str]: ...


class MemoryPinStore:
    """Pins kept in memory (notebooks, tests)."""

    def __init__(self) -> None:
        self._pins: dict[str, PinRecord] = {}
        self._lock = threading.Lock()

    def get(self, identity: str) -> PinRecord | None:
        with self._lock:
            return self._pins.get(identity)

    def put(self, record: PinRecord) -> None:
        with self._lock:
            self._pins[record.identity] = record

    def delete(self, identity: str) -> None:
        with self._lock:
            self._pins.pop(identity, None)

    def identities(self) -> list[str]:
        with self._lock:
            return sorted(self._pins)


class JsonFilePinStore:
    """Pins in one JSON file (0600), rewritten atomically on every change."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, PinRecord]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise PinStoreError(f"cannot read pin store {self.path}: {exc}") from None
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            raise PinStoreError(f"pin store {self.path} is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise PinStoreError(f"{self.path} is not a twilio_e2ee pin store")
        if doc.get("version") != _VERSION:
            raise PinStoreError(f"pin store {self.path}: unknown version {doc.get('version')!r}")
        pins = doc.get("pins")
        if not isinstance(pins, dict):
            raise PinStoreError(f"pin store {self.path} is damaged: no pins object")
        out: dict[str, PinRecord] = {}
        for identity, rec in pins.items():
            if not isinstance(rec, dict):
                raise PinStoreError(f"pin of {identity!r} is damaged")
            out[identity] = PinRecord.from_json(identity, rec)
        return out

    def _save(self, pins: Mapping[str, PinRecord]) -> None:
        doc = {
            "format": _FORMAT,
            "version": _VERSION,
            "pins": {ident: rec.to_json() for ident, rec in sorted(pins.items())},
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(doc, indent=1).encode("utf-8"))
        except OSError as exc:
            raise PinStoreError(f"cannot write pin store {self.path}: {exc}") from None

    def get(self, identity: str) -> PinRecord | None:
        with self._lock:
            return self._load().get(identity)

    def put(self, record: PinRecord) -> None:
        with self._lock:
            pins = self._load()
            pins[record.identity] = record
            self._save(pins)

    def delete(self, identity: str) -> None:
        with self._lock:
            pins = self._load()
            if pins.pop(identity, None) is not None:
                self._save(pins)

    def identities(self) -> list[str]:
        with self._lock:
            return sorted(self._load())


class SqlitePinStore:
    """Pins in an SQLite database (each change is one transaction)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        with self._errors("open"):
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
            with self._db:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS card_pins (identity TEXT PRIMARY KEY, "
                    "card TEXT NOT NULL, card_id TEXT NOT NULL, pinned_at REAL NOT NULL, "
                    "history TEXT NOT NULL)"
                )

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Database failures (and text SQLite cannot encode) as PinStoreError."""
        try:
            yield
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise PinStoreError(f"cannot {action} pin store {self.path}: {exc}") from None

    def get(self, identity: str) -> PinRecord | None:
        with self._lock, self._errors("read"):
            row = self._db.execute(
                "SELECT card, card_id, pinned_at, history FROM card_pins WHERE identity = ?",
                (identity,),
            ).fetchone()
        if row is None:
            return None
        try:
            history = json.loads(row[3])
        except (ValueError, TypeError):
            raise PinStoreError(f"pin of {identity!r} is damaged: bad history") from None
        return PinRecord.from_json(
            identity, {"card": row[0], "card_id": row[1], "pinned_at": row[2], "history": history}
        )

    def put(self, record: PinRecord) -> None:
        data = record.to_json()
        row = (record.identity, data["card"], data["card_id"], data["pinned_at"])
        with self._lock, self._errors("write"), self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO card_pins VALUES (?, ?, ?, ?, ?)",
                (*row, json.dumps(data["history"])),
            )

    def delete(self, identity: str) -> None:
        with self._lock, self._errors("write"), self._db:
            self._db.execute("DELETE FROM card_pins WHERE identity = ?", (identity,))

    def identities(self) -> list[str]:
        with self._lock, self._errors("read"):
            rows = self._db.execute("SELECT identity FROM card_pins ORDER BY identity")
            return [r[0] for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
