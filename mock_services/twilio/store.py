"""State of the mock Twilio service: SQLite, in memory by default or in a file (survives restarts).

One table holds every resource as a JSON document with its kind, parent SID, alternative name
(unique name / identity) and list order (``ord``: the message index for messages, a creation
sequence otherwise). Deletes are soft (a tombstone), so a page token naming a deleted item still
resolves to a position. Every change runs in one transaction under a lock: a failed request never
leaves partial state, and the server thread and notebook threads can use it at the same time.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Record", "TwilioStore"]

Record = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    sid TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    parent TEXT NOT NULL,
    alt TEXT,
    ord INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_list ON resources (kind, parent, deleted, ord);
CREATE INDEX IF NOT EXISTS resources_alt ON resources (kind, parent, alt);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class TwilioStore:
    """Resources of the mock, in SQLite (``path=None``: a private in-memory database)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        target = ":memory:" if self.path is None else str(self.path)
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._depth = 0
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # --- transactions ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[TwilioStore]:
        """All changes inside commit together or not at all (re-entrant)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # --- resources -------------------------------------------------------------------------

    def insert(
        self,
        kind: str,
        parent: str,
        data: Record,
        *,
        alt: str | None = None,
        ord: int | None = None,
    ) -> Record:
        with self.transaction():
            (seq,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM resources").fetchone()
            self._db.execute(
                "INSERT INTO resources (sid, kind, parent, alt, ord, seq, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    data["sid"],
                    kind,
                    parent,
                    alt,
                    seq if ord is None else ord,
                    seq,
                    json.dumps(data),
                ),
            )
        return data

    def update(self, sid: str, data: Record, *, alt: str | None = None) -> Record:
        with self.transaction():
            self._db.execute(
                "UPDATE resources SET data = ?, alt = ? WHERE sid = ?",
                (json.dumps(data), alt, sid),
            )
        return data

    def get(self, kind: str, sid: str, parent: str | None = None) -> Record | None:
        """A live resource by SID (and parent, when given)."""
        query = "SELECT data FROM resources WHERE kind = ? AND sid = ? AND deleted = 0"
        args: tuple[Any, ...] = (kind, sid)
        if parent is not None:
            query += " AND parent = ?"
            args += (parent,)
        with self._lock:
            row = self._db.execute(query, args).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def find(self, kind: str, parent: str, alt: str) -> Record | None:
        """A live resource by its alternative name (unique name, identity) within a parent."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM resources "
                "WHERE kind = ? AND parent = ? AND alt = ? AND deleted = 0",
                (kind, parent, alt),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def children(self, kind: str, parent: str) -> list[tuple[int, Record]]:
        """Live resources of a kind under a parent as ``(ord, record)``, in list order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT ord, data FROM resources WHERE kind = ? AND parent = ? AND deleted = 0 "
                "ORDER BY ord",
                (kind, parent),
            ).fetchall()
        return [(int(o), dict(json.loads(d))) for o, d in rows]

    def count(self, kind: str, parent: str) -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM resources WHERE kind = ? AND parent = ? AND deleted = 0",
                (kind, parent),
            ).fetchone()
        return int(n)

    def ord_of(self, kind: str, parent: str, sid: str) -> int | None:
        """List position of a resource, deleted or not (for page tokens)."""
        with self._lock:
            row = self._db.execute(
                "SELECT ord FROM resources WHERE kind = ? AND parent = ? AND sid = ?",
                (kind, parent, sid),
            ).fetchone()
        return None if row is None else int(row[0])

    def delete(self, sid: str) -> None:
        """Delete a resource and, recursively, everything under it."""
        with self.transaction():
            self._db.execute("UPDATE resources SET deleted = 1, alt = NULL WHERE sid = ?", (sid,))
            rows = self._db.execute(
                "SELECT sid FROM resources WHERE parent = ? AND deleted = 0", (sid,)
            ).fetchall()
            for (child,) in rows:
                self.delete(child)
