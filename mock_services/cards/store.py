"""State of the mock Cards + Keyknox service: in memory, or in SQLite so it survives a restart.

Both stores expose the same small interface and a re-entrant ``lock``; the service holds the lock
around every check-then-write so concurrent requests cannot interleave (a card cannot be
superseded twice, a Keyknox hash cannot be raced). SQLite writes happen in one transaction each.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from twilio_e2ee.errors import ConfigurationError

__all__ = ["CardRecord", "CardsStore", "KeyknoxRecord", "MemoryStore", "SqliteStore"]


@dataclass(frozen=True)
class CardRecord:
    """A published card: its raw model JSON (with the service signature) and its state."""

    id: str
    identity: str
    model: dict[str, Any]
    seq: int
    superseded: bool = False
    revoked: bool = False


@dataclass(frozen=True)
class KeyknoxRecord:
    """One Keyknox v2 entry ``owner/root/path/key`` (meta and value as base64 text)."""

    owner: str
    root: str
    path: str
    key: str
    identities: tuple[str, ...]
    meta: str
    value: str
    version: int
    hash: str


class CardsStore(Protocol):
    lock: threading.RLock

    def get_setting(self, name: str) -> str | None: ...
    def set_setting(self, name: str, value: str) -> None: ...
    def get_card(self, card_id: str) -> CardRecord | None: ...
    def cards_of(self, identity: str) -> list[CardRecord]: ...
    def next_seq(self) -> int: ...
    def insert_card(self, card: CardRecord, supersede: str | None) -> None: ...
    def revoke_card(self, card_id: str) -> None: ...
    def kk_get(self, owner: str, root: str, path: str, key: str) -> KeyknoxRecord | None: ...
    def kk_put(self, record: KeyknoxRecord) -> None: ...
    def kk_delete(self, owner: str, root: str, path: str, key: str) -> None: ...
    def kk_list(self, owner: str) -> list[KeyknoxRecord]: ...
    def close(self) -> None: ...


class MemoryStore:
    """Everything in dicts; lost when the process ends."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._settings: dict[str, str] = {}
        self._cards: dict[str, CardRecord] = {}
        self._kk: dict[tuple[str, str, str, str], KeyknoxRecord] = {}

    def get_setting(self, name: str) -> str | None:
        return self._settings.get(name)

    def set_setting(self, name: str, value: str) -> None:
        self._settings[name] = value

    def get_card(self, card_id: str) -> CardRecord | None:
        return self._cards.get(card_id)

    def cards_of(self, identity: str) -> list[CardRecord]:
        return sorted((c for c in self._cards.values() if c.identity == identity), key=_seq)

    def next_seq(self) -> int:
        return 1 + max((c.seq for c in self._cards.values()), default=0)

    def insert_card(self, card: CardRecord, supersede: str | None) -> None:
        with self.lock:
            if supersede is not None:
                self._cards[supersede] = replace(self._cards[supersede], superseded=True)
            self._cards[card.id] = card

    def revoke_card(self, card_id: str) -> None:
        with self.lock:
            self._cards[card_id] = replace(self._cards[card_id], revoked=True)

    def kk_get(self, owner: str, root: str, path: str, key: str) -> KeyknoxRecord | None:
        return self._kk.get((owner, root, path, key))

    def kk_put(self, record: KeyknoxRecord) -> None:
        self._kk[(record.owner, record.root, record.path, record.key)] = record

    def kk_delete(self, owner: str, root: str, path: str, key: str) -> None:
        self._kk.pop((owner, root, path, key), None)

    def kk_list(self, owner: str) -> list[KeyknoxRecord]:
        return [r for (o, *_), r in sorted(self._kk.items()) if o == owner]

    def close(self) -> None:
        pass


def _seq(card: CardRecord) -> int:
    return card.seq


_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    model TEXT NOT NULL,
    seq INTEGER NOT NULL,
    superseded INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cards_identity ON cards (identity);
CREATE TABLE IF NOT EXISTS keyknox (
    owner TEXT NOT NULL, root TEXT NOT NULL, path TEXT NOT NULL, key TEXT NOT NULL,
    identities TEXT NOT NULL, meta TEXT NOT NULL, value TEXT NOT NULL,
    version INTEGER NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (owner, root, path, key)
);
"""


class SqliteStore:
    """The same state in one SQLite file (WAL journal; one transaction per write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            message = f"cannot open mock Cards database {self.path}: {exc}"
            raise ConfigurationError(message) from None

    def _one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self.lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self.lock:
            return list(self._db.execute(sql, args).fetchall())

    def _write(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get_setting(self, name: str) -> str | None:
        row = self._one("SELECT value FROM settings WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    def set_setting(self, name: str, value: str) -> None:
        self._write(("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, value)))

    @staticmethod
    def _card(row: tuple[Any, ...]) -> CardRecord:
        return CardRecord(row[0], row[1], json.loads(row[2]), row[3], bool(row[4]), bool(row[5]))

    def get_card(self, card_id: str) -> CardRecord | None:
        row = self._one(
            "SELECT id, identity, model, seq, superseded, revoked FROM cards WHERE id = ?",
            (card_id,),
        )
        return None if row is None else self._card(row)

    def cards_of(self, identity: str) -> list[CardRecord]:
        rows = self._all(
            "SELECT id, identity, model, seq, superseded, revoked FROM cards "
            "WHERE identity = ? ORDER BY seq",
            (identity,),
        )
        return [self._card(r) for r in rows]

    def next_seq(self) -> int:
        row = self._one("SELECT COALESCE(MAX(seq), 0) + 1 FROM cards", ())
        return int(row[0]) if row else 1

    def insert_card(self, card: CardRecord, supersede: str | None) -> None:
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (
                "INSERT INTO cards (id, identity, model, seq, superseded, revoked) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    card.id,
                    card.identity,
                    json.dumps(card.model),
                    card.seq,
                    int(card.superseded),
                    int(card.revoked),
                ),
            )
        ]
        if supersede is not None:
            statements.append(("UPDATE cards SET superseded = 1 WHERE id = ?", (supersede,)))
        self._write(*statements)

    def revoke_card(self, card_id: str) -> None:
        self._write(("UPDATE cards SET revoked = 1 WHERE id = ?", (card_id,)))

    @staticmethod
    def _kk(row: tuple[Any, ...]) -> KeyknoxRecord:
        return KeyknoxRecord(
            row[0], row[1], row[2], row[3], tuple(json.loads(row[4])), row[5], row[6], row[7],
            row[8],
        )  # fmt: skip

    _KK_COLUMNS = "owner, root, path, key, identities, meta, value, version, hash"

    def kk_get(self, owner: str, root: str, path: str, key: str) -> KeyknoxRecord | None:
        row = self._one(
            f"SELECT {self._KK_COLUMNS} FROM keyknox "
            "WHERE owner = ? AND root = ? AND path = ? AND key = ?",
            (owner, root, path, key),
        )
        return None if row is None else self._kk(row)

    def kk_put(self, record: KeyknoxRecord) -> None:
        self._write(
            (
                f"INSERT OR REPLACE INTO keyknox ({self._KK_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.owner,
                    record.root,
                    record.path,
                    record.key,
                    json.dumps(list(record.identities)),
                    record.meta,
                    record.value,
                    record.version,
                    record.hash,
                ),
            )
        )

    def kk_delete(self, owner: str, root: str, path: str, key: str) -> None:
        self._write(
            (
                "DELETE FROM keyknox WHERE owner = ? AND root = ? AND path = ? AND key = ?",
                (owner, root, path, key),
            )
        )

    def kk_list(self, owner: str) -> list[KeyknoxRecord]:
        rows = self._all(
            f"SELECT {self._KK_COLUMNS} FROM keyknox WHERE owner = ? ORDER BY root, path, key",
            (owner,),
        )
        return [self._kk(r) for r in rows]

    def close(self) -> None:
        with self.lock:
            self._db.close()
