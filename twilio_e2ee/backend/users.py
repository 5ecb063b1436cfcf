"""Users of the token backend in SQLite, with Argon2id password hashes.

One connection per store, guarded by a lock (so ``":memory:"`` works and threads may share it).
Only the Argon2id hash is stored, never the password. Verifying an unknown identity still runs
one Argon2 verification, so response time does not reveal which identities exist.
"""

from __future__ import annotations

import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from twilio_e2ee.errors import ConfigurationError, E2EEError

__all__ = [
    "MAX_IDENTITY_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "Database",
    "IdentityTakenError",
    "InvalidCredentialsError",
    "InvalidInputError",
    "User",
    "UserStore",
    "validate_identity",
    "validate_password",
]

MAX_IDENTITY_LENGTH = 256  # Twilio's identity limit
MAX_PASSWORD_LENGTH = 1024


class BackendInputError(E2EEError):
    """Base of the backend's own input and account errors."""


class InvalidInputError(BackendInputError):
    """An identity or password does not meet the rules."""


class IdentityTakenError(BackendInputError):
    """Sign-up for an identity that is already registered."""


class InvalidCredentialsError(BackendInputError):
    """Unknown identity or wrong password (deliberately not told apart)."""


def validate_identity(identity: object) -> str:
    """An identity: a non-empty string of at most 256 characters, with no control or format
    characters (``\\n``, NUL, zero-width, bidi overrides) and no surrounding whitespace."""
    if not isinstance(identity, str):
        raise InvalidInputError("identity must be a string")
    if not identity:
        raise InvalidInputError("identity must not be empty")
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise InvalidInputError(f"identity must be at most {MAX_IDENTITY_LENGTH} characters")
    if identity != identity.strip():
        raise InvalidInputError("identity must not start or end with whitespace")
    for ch in identity:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs"):
            raise InvalidInputError(f"identity contains a control character (U+{ord(ch):04X})")
    return identity


def validate_password(password: object, min_length: int = 8) -> str:
    """A password: a string of ``min_length`` to 1024 characters, encodable as UTF-8."""
    if not isinstance(password, str):
        raise InvalidInputError("password must be a string")
    if len(password) < min_length:
        raise InvalidInputError(f"password must be at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    if not password.isascii():
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError("password is not valid text (lone surrogate)") from None
    return password


class Database:
    """A thread-safe SQLite connection (file path, or in memory for ``None`` / ``":memory:"``)."""

    def __init__(self, path: str | Path | None = None) -> None:
        target = ":memory:" if path is None else str(path)
        if target != ":memory:":
            parent = Path(target).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigurationError(f"database directory {parent} does not exist")
        try:
            self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA foreign_keys = ON")
            if target != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open database {target}: {exc}") from None
        self.path = target
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically (all or nothing) under the connection lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@dataclass(frozen=True)
class User:
    """A registered user (the hash is kept inside the store)."""

    identity: str
    created_at: float


class UserStore:
    """Registered users and their Argon2id password hashes."""

    def __init__(self, db: Database, hasher: PasswordHasher, *, clock: Callable[[], float]) -> None:
        self._db = db
        self._hasher = hasher
        self._clock = clock
        self._dummy_hash = hasher.hash("not a password: equalises timing for unknown identities")
        with db.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS users ("
                " identity TEXT PRIMARY KEY,"
                " password_hash TEXT NOT NULL,"
                " created_at REAL NOT NULL)"
            )

    def create(self, identity: str, password: str) -> User:
        """Register ``identity``; raises IdentityTakenError if it exists (nothing changes).

        The identity and password must pass :func:`validate_identity` / :func:`validate_password`
        (InvalidInputError); the app also enforces its minimum password length.
        """
        validate_identity(identity)
        validate_password(password, 1)
        password_hash = self._hasher.hash(password)
        created = self._clock()
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    "INSERT INTO users (identity, password_hash, created_at) VALUES (?, ?, ?)",
                    (identity, password_hash, created),
                )
        except sqlite3.IntegrityError:
            raise IdentityTakenError(f"identity {identity!r} is already registered") from None
        return User(identity, created)

    def get(self, identity: str) -> User | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT identity, created_at FROM users WHERE identity = ?", (identity,)
            ).fetchone()
        return None if row is None else User(row[0], row[1])

    def exists(self, identity: str) -> bool:
        return self.get(identity) is not None

    def count(self) -> int:
        with self._db.transaction() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    def authenticate(self, identity: str, password: str) -> User:
        """Check a password; raises InvalidCredentialsError for unknown identity or mismatch.

        Re-hashes with the current parameters when the stored hash is outdated.
        """
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT password_hash, created_at FROM users WHERE identity = ?", (identity,)
            ).fetchone()
        stored = self._dummy_hash if row is None else row[0]
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
            raise InvalidCredentialsError("unknown identity or wrong password") from None
        if row is None:  # someone typed the dummy hash's own password
            raise InvalidCredentialsError("unknown identity or wrong password")
        if self._hasher.check_needs_rehash(stored):
            new_hash = self._hasher.hash(password)
            with self._db.transaction() as conn:
                conn.execute(
                    "UPDATE users SET password_hash = ? WHERE identity = ? AND password_hash = ?",
                    (new_hash, identity, stored),
                )
        return User(identity, row[1])

    def password_hash(self, identity: str) -> str | None:
        """The stored Argon2id hash (for tests and audits)."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT password_hash FROM users WHERE identity = ?", (identity,)
            ).fetchone()
        return None if row is None else str(row[0])
