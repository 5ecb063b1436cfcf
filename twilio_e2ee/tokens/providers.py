"""Caching JWT providers: a token callback → a cached JWT, refreshed shortly before it expires.

Like Virgil's CachingJwtProvider: the callback (E3Kit's ``tokenCallback``) is called only when no
token is cached, when the cached one expires within ``margin`` seconds (5 s by default, as
Virgil), or when a caller forces a reload (e.g. after the service said "token expired").
Concurrent refreshes are coalesced into a single callback call: threads wait on a lock and reuse
the token the first one fetched; async callers share one task.

``exp`` is read from the *unverified* JWT payload: this works for Virgil's VEDS512 JWTs and for
Twilio's HS256 access tokens alike. The provider never trusts the token for anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from twilio_e2ee.errors import E2EEError, TokenError
from twilio_e2ee.tokens.jwt_parts import MalformedTokenError, json_part, split_token

__all__ = [
    "DEFAULT_MARGIN",
    "AsyncCachingJwtProvider",
    "AsyncTokenProvider",
    "CachingJwtProvider",
    "MalformedTokenError",
    "TokenCallbackError",
    "TokenProvider",
    "token_expiry",
    "token_identity",
    "unverified_claims",
]

DEFAULT_MARGIN = 5.0


class TokenProvider(Protocol):
    """Anything with ``get_token(force_reload=False) -> str`` (e.g. CachingJwtProvider)."""

    def get_token(self, force_reload: bool = False) -> str: ...


class AsyncTokenProvider(Protocol):
    """Anything with ``async get_token(force_reload=False) -> str``."""

    async def get_token(self, force_reload: bool = False) -> str: ...


class TokenCallbackError(TokenError):
    """The token callback raised an exception that is not a twilio_e2ee error (see __cause__)."""


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, decoded *without* checking its signature."""
    if not isinstance(token, str):
        raise MalformedTokenError(f"token must be a str, got {type(token).__name__}")
    header, payload, _ = split_token(token.strip(), "token")
    json_part(header, "token header")
    return json_part(payload, "token payload")


def token_expiry(token: str) -> float:
    """The ``exp`` claim (Unix seconds) of a JWT, unverified."""
    exp = unverified_claims(token).get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise MalformedTokenError("token has no numeric 'exp' claim")
    return float(exp)


def token_identity(token: str) -> str:
    """The identity a token names, unverified: Virgil's ``sub`` = ``identity-<id>``, or Twilio's
    ``grants.identity``."""
    claims = unverified_claims(token)
    sub = claims.get("sub")
    if isinstance(sub, str) and sub.startswith("identity-") and len(sub) > len("identity-"):
        return sub[len("identity-") :]
    grants = claims.get("grants")
    if isinstance(grants, dict) and isinstance(grants.get("identity"), str):
        return str(grants["identity"])
    raise MalformedTokenError("token names no identity (no 'identity-…' sub, no grants.identity)")


@dataclass(frozen=True)
class _Cached:
    token: str
    expires_at: float


def _check(token: object) -> _Cached:
    if not isinstance(token, str):
        raise MalformedTokenError(f"token callback returned {type(token).__name__}, not a str")
    return _Cached(token, token_expiry(token))


@contextlib.contextmanager
def _callback_errors() -> Iterator[None]:
    """A failing callback: package errors pass through, anything else is TokenCallbackError."""
    try:
        yield
    except E2EEError:
        raise
    except Exception as exc:
        raise TokenCallbackError(f"token callback failed: {exc!r}") from exc


class _CachingProvider:
    """What the sync and async providers share: the callback, the cache and its freshness."""

    def __init__(self, callback: object, margin: float, clock: Callable[[], float]) -> None:
        if not callable(callback):
            raise TokenError("token callback must be callable")
        try:
            self.margin = float(margin)
        except (TypeError, ValueError):
            raise TokenError(f"margin must be a number of seconds, got {margin!r}") from None
        self._clock = clock
        self._cached: _Cached | None = None
        self.refresh_count = 0  # how many times the callback ran (for tests and diagnostics)

    def _fresh_token(self) -> str | None:
        """The cached token if it expires more than ``margin`` seconds from now."""
        cached = self._cached
        if cached is not None and cached.expires_at - self.margin > self._clock():
            return cached.token
        return None


class CachingJwtProvider(_CachingProvider):
    """Thread-safe caching provider over a synchronous zero-argument token callback."""

    def __init__(
        self,
        callback: Callable[[], str],
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(callback, margin, clock)
        self._callback = callback
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every refresh

    def get_token(self, force_reload: bool = False) -> str:
        """The cached token, or a new one from the callback (forced with ``force_reload``)."""
        if not force_reload and (token := self._fresh_token()) is not None:
            return token
        seen = self._generation
        with self._lock:
            # Another thread refreshed while we waited (coalescing), or no reload is forced.
            reuse = self._generation != seen or not force_reload
            if reuse and (token := self._fresh_token()) is not None:
                return token
            self.refresh_count += 1
            with _callback_errors():
                token = self._callback()
            self._cached = _check(token)
            self._generation += 1
            return token

    def identity(self) -> str:
        """The identity named by the current token (unverified)."""
        return token_identity(self.get_token())


class AsyncCachingJwtProvider(_CachingProvider):
    """Caching provider over an async (or plain) zero-argument token callback.

    Concurrent callers that need a refresh await one shared task; cancelling one caller does not
    cancel the refresh for the others.
    """

    def __init__(
        self,
        callback: Callable[[], Awaitable[str] | str],
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(callback, margin, clock)
        self._callback = callback
        self._pending: asyncio.Task[_Cached] | None = None

    async def _refresh(self) -> _Cached:
        self.refresh_count += 1
        with _callback_errors():
            result = self._callback()
            token = await result if inspect.isawaitable(result) else result
        cached = _check(token)
        self._cached = cached
        return cached

    async def get_token(self, force_reload: bool = False) -> str:
        """The cached token, or a new one from the callback (forced with ``force_reload``)."""
        pending = self._pending
        if pending is not None and pending.get_loop() is not asyncio.get_running_loop():
            pending = self._pending = None  # left over from another event loop
        if pending is None:
            if not force_reload and (token := self._fresh_token()) is not None:
                return token
            pending = asyncio.ensure_future(self._refresh())
            self._pending = pending

            def clear(task: asyncio.Task[_Cached]) -> None:
                if self._pending is task:
                    self._pending = None
                if not task.cancelled():
                    task.exception()  # mark retrieved; callers re-raise it

            pending.add_done_callback(clear)
        cached = await asyncio.shield(pending)
        return cached.token

    async def identity(self) -> str:
        """The identity named by the current token (unverified)."""
        return token_identity(await self.get_token())
