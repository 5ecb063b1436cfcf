"""Mock Virgil Cards v5 + Keyknox v2 service (Starlette), in memory or SQLite, with a journal."""

from mock_services.cards.app import MAX_BODY_BYTES, MockCardsService
from mock_services.cards.errors import ApiError
from mock_services.cards.store import CardRecord, KeyknoxRecord, MemoryStore, SqliteStore

__all__ = [
    "MAX_BODY_BYTES",
    "ApiError",
    "CardRecord",
    "KeyknoxRecord",
    "MemoryStore",
    "MockCardsService",
    "SqliteStore",
]
