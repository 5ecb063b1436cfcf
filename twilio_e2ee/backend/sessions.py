"""Session tokens of the backend (the sample's ``authToken``), stored in SQLite, and the
failed-login rate limiter.

A session token is 32 random bytes (base64url). Only its SHA-256 is stored, so a copy of the
database grants no sessions. Sessions expire after a fixed lifetime and can be revoked one by
one or all at once for an identity.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from twilio_e2ee.backend.users import Database
from twilio_e2ee.errors import TokenError, TokenExpiredError

__all__ = [
    "FailedLoginLimiter",
    "Session",
    "SessionRevokedError",
    "SessionStore",
    "UnknownSessionError",
]


class UnknownSessionError(TokenError):
    """No session has this token."""


class SessionRevokedError(TokenError):
    """The session was revoked (logout)."""


@dataclass(frozen=True)
class Session:
    """A live session. ``token`` is only known right after creation."""

    identity: str
    created_at: float
    expires_at: float
    passwordless: bool
    token: str | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    """Sessions in the backend's database."""

    def __init__(self, db: Database, *, ttl: float, clock: Callable[[], float]) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock
        with db.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sessions ("
                " token_sha256 TEXT PRIMARY KEY,"
                " identity TEXT NOT NULL,"
                " created_at REAL NOT NULL,"
                " expires_at REAL NOT NULL,"
                " passwordless INTEGER NOT NULL,"
                " revoked INTEGER NOT NULL DEFAULT 0)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS sessions_identity ON sessions (identity)")

    def create(self, identity: str, *, passwordless: bool = False) -> Session:
        """Open a session; the returned object carries the token (shown once)."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + self._ttl
        with self._db.transaction() as conn:
            # Forget sessions that ended long ago, so the table does not grow without bound.
            conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now - 86400,))
            conn.execute(
                "INSERT INTO sessions (token_sha256, identity, created_at, expires_at,"
                " passwordless) VALUES (?, ?, ?, ?, ?)",
                (_digest(token), identity, now, expires, int(passwordless)),
            )
        return Session(identity, now, expires, passwordless, token)

    def lookup(self, token: str) -> Session:
        """The live session of ``token``; raises UnknownSessionError, SessionRevokedError or
        TokenExpiredError."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT identity, created_at, expires_at, passwordless, revoked FROM sessions"
                " WHERE token_sha256 = ?",
                (_digest(token),),
            ).fetchone()
        if row is None:
            raise UnknownSessionError("unknown session")
        if row[4]:
            raise SessionRevokedError("session was revoked")
        if row[2] <= self._clock():
            raise TokenExpiredError("session expired")
        return Session(row[0], row[1], row[2], bool(row[3]))

    def revoke(self, token: str) -> bool:
        """Revoke one session; True if it was live."""
        with self._db.transaction() as conn:
            cur = conn.execute(
                "UPDATE sessions SET revoked = 1 WHERE token_sha256 = ? AND revoked = 0",
                (_digest(token),),
            )
            return cur.rowcount > 0

    def revoke_all(self, identity: str) -> int:
        """Revoke every session of ``identity``; returns how many were live."""
        with self._db.transaction() as conn:
            cur = conn.execute(
                "UPDATE sessions SET revoked = 1 WHERE identity = ? AND revoked = 0",
                (identity,),
            )
            return cur.rowcount

    def live_count(self) -> int:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM sessions WHERE revoked = 0 AND expires_at > ?",
                (self._clock(),),
            ).fetchone()
        return int(row[0])


class FailedLoginLimiter:
    """Sliding-window count of failed logins per key (identity, client address).

    ``retry_after(key)`` is 0 while fewer than ``limit`` failures fall in the last ``window``
    seconds, else the seconds until the oldest of them leaves the window. Memory is bounded:
    at most ``limit`` timestamps per key, and stale keys are dropped.
    """

    def __init__(
        self, *, limit: int, window: float, clock: Callable[[], float], max_keys: int = 100_000
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> int:
        """Seconds to wait before another attempt for ``key`` (0 = allowed now)."""
        with self._lock:
            now = self._clock()
            return self._wait(self._prune(key, now), now)

    def _wait(self, times: deque[float] | None, now: float) -> int:
        if times is None or len(times) < self.limit:
            return 0
        return max(1, math.ceil(times[0] + self.window - now))

    def _record(self, key: str, now: float) -> None:
        if len(self._failures) >= self._max_keys:
            for stale in list(self._failures):
                self._prune(stale, now)
            while len(self._failures) >= self._max_keys:  # all fresh: drop the oldest keys
                del self._failures[next(iter(self._failures))]
        times = self._prune(key, now)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.limit)
        times.append(now)

    def record_failure(self, key: str) -> None:
        with self._lock:
            self._record(key, self._clock())

    def begin_attempt(self, key: str) -> int:
        """Check and count in one step: the seconds to wait (attempt refused, nothing counted),
        or 0 after counting this attempt as a failure until :meth:`forgive` takes it back.
        Parallel attempts therefore cannot all pass the check before any failure is recorded."""
        with self._lock:
            now = self._clock()
            wait = self._wait(self._prune(key, now), now)
            if not wait:
                self._record(key, now)
            return wait

    def forgive(self, key: str) -> None:
        """Take back the newest counted attempt of ``key`` (it succeeded or never ran)."""
        with self._lock:
            times = self._failures.get(key)
            if times:
                times.pop()
                if not times:
                    del self._failures[key]

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
