"""A request journal: what a mock service saw, readable by notebooks and tests.

Each mock records one :class:`JournalEntry` per request (after it is handled), so a notebook can
show exactly what the directory or Twilio received, e.g. that message bodies were ciphertext.
Thread-safe: the servers run in background threads while notebooks read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Journal", "JournalEntry"]


@dataclass(frozen=True)
class JournalEntry:
    """One request as the service saw it."""

    service: str  # "cards", "keyknox", "twilio", "backend"
    method: str
    path: str
    status: int
    identity: str | None = None  # who made the request (JWT identity, Twilio author/account)
    request: Any = None  # parsed body: dict for JSON / form, None when empty
    response: Any = None  # parsed response body when JSON
    time: float = field(default_factory=time.time)


class Journal:
    """An append-only, bounded, thread-safe list of journal entries with change callbacks."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: list[JournalEntry] = []
        self._lock = threading.Lock()
        self._max = max_entries
        self._listeners: list[Callable[[JournalEntry], None]] = []

    def record(self, entry: JournalEntry) -> None:
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > self._max:
                del self._entries[: len(self._entries) - self._max]
            listeners = list(self._listeners)
        for listener in listeners:
            listener(entry)

    def subscribe(self, listener: Callable[[JournalEntry], None]) -> Callable[[], None]:
        """Call `listener` for every new entry; returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    @property
    def entries(self) -> list[JournalEntry]:
        """A snapshot copy of all entries, oldest first."""
        with self._lock:
            return list(self._entries)

    def filter(
        self, *, service: str | None = None, method: str | None = None, path_contains: str = ""
    ) -> list[JournalEntry]:
        """Entries matching all the given criteria."""
        return [
            e
            for e in self.entries
            if (service is None or e.service == service)
            and (method is None or e.method == method)
            and path_contains in e.path
        ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
