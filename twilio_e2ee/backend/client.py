"""Client of the token backend (httpx, sync and async over one shared core).

Sign up, sign in and out, and get the two tokens a chat client needs. The token providers are
:mod:`twilio_e2ee.tokens.providers`' caching providers: tokens are cached and refreshed shortly
before ``exp``, with concurrent refreshes coalesced into one request. A provider belongs to the
session it was made in; after ``login`` or ``logout`` ask for new providers.

    client = BackendClient("http://127.0.0.1:3000")
    client.login("alice", "correct horse battery staple")
    virgil = client.virgil_token_provider()     # E3Kit-style: virgil.get_token()
    ethree_callback = client.virgil_token_callback
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from twilio_e2ee.errors import (
    AuthenticationError,
    E2EEError,
    ServiceError,
    ServiceUnavailableError,
)
from twilio_e2ee.tokens.providers import AsyncCachingJwtProvider, CachingJwtProvider

__all__ = [
    "AsyncBackendClient",
    "BackendAuthenticationError",
    "BackendClient",
    "BackendRequestError",
    "BackendSession",
    "NotSignedInError",
    "RateLimitedError",
]

DEFAULT_TIMEOUT = 10.0


class BackendRequestError(ServiceError):
    """The backend refused a request (4xx); ``error_code`` is its ``code`` string."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None):
        super().__init__(message, status=status)
        self.error_code = error_code


class BackendAuthenticationError(AuthenticationError):
    """Wrong password, or a session that is unknown, expired or revoked (401)."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None):
        super().__init__(message, status=status)
        self.error_code = error_code


class RateLimitedError(ServiceUnavailableError):
    """Too many failed sign-ins (429); ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None, error_code: str | None = None):
        super().__init__(message, status=429)
        self.retry_after = retry_after
        self.error_code = error_code


class NotSignedInError(AuthenticationError):
    """The client has no session: call ``login`` or ``signup`` first."""


@dataclass(frozen=True)
class BackendSession:
    """A session with the backend (``auth_token`` is the sample's ``authToken``)."""

    identity: str
    auth_token: str
    expires_at: float

    def __repr__(self) -> str:  # never show the token
        return f"BackendSession(identity={self.identity!r}, expires_at={self.expires_at})"


# --- the shared, I/O-free core -------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    body: dict[str, Any] | None
    token: str | None


def _headers(call: _Call) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if call.body is not None:
        headers["Content-Type"] = "application/json"
    if call.token is not None:
        headers["Authorization"] = f"Bearer {call.token}"
    return headers


def _raise_for(response: httpx.Response) -> None:
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    message = data.get("error") if isinstance(data, dict) else None
    code = data.get("code") if isinstance(data, dict) else None
    text = f"backend: {message or response.reason_phrase} (HTTP {response.status_code})"
    code = code if isinstance(code, str) else None
    status = response.status_code
    if status == 429:
        raw = response.headers.get("retry-after")
        retry = float(raw) if raw is not None and raw.isascii() and raw.isdigit() else None
        raise RateLimitedError(text, retry_after=retry, error_code=code)
    if status in (401, 403):
        raise BackendAuthenticationError(text, status=status, error_code=code)
    if status >= 500:
        raise ServiceUnavailableError(text, status=status)
    raise BackendRequestError(text, status=status, error_code=code)


def _parse(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        _raise_for(response)
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        raise ServiceError("backend answered with something that is not JSON") from None
    if not isinstance(data, dict):
        raise ServiceError("backend answered with JSON that is not an object")
    return data


def _string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ServiceError(f"backend answer has no {key!r}")
    return value


def _session(data: dict[str, Any]) -> BackendSession:
    expires = data.get("expiresAt")
    return BackendSession(
        identity=_string(data, "identity"),
        auth_token=_string(data, "authToken"),
        expires_at=float(expires) if isinstance(expires, (int, float)) else float("inf"),
    )


def _transport_error(exc: httpx.HTTPError) -> ServiceUnavailableError:
    return ServiceUnavailableError(f"backend unreachable: {exc!r}")


class _Core:
    """State and request building shared by the sync and async clients."""

    def __init__(self, base_url: str) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise E2EEError(f"backend base URL must be http(s)://…, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.session: BackendSession | None = None

    def token(self) -> str:
        if self.session is None:
            raise NotSignedInError("not signed in: call login() or signup() first")
        return self.session.auth_token

    @staticmethod
    def credentials(identity: str, password: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"identity": identity}
        if password is not None:
            body["password"] = password
        return body


# --- sync ---------------------------------------------------------------------------------------


class BackendClient:
    """Synchronous client of the token backend."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = _Core(base_url)
        self._http = httpx.Client(
            base_url=self._core.base_url, timeout=timeout, transport=transport, trust_env=False
        )
        self._virgil: CachingJwtProvider | None = None
        self._twilio: CachingJwtProvider | None = None

    @property
    def session(self) -> BackendSession | None:
        return self._core.session

    @property
    def identity(self) -> str | None:
        return None if self._core.session is None else self._core.session.identity

    def _send(self, call: _Call) -> dict[str, Any]:
        try:
            response = self._http.request(
                call.method,
                call.path,
                headers=_headers(call),
                content=None if call.body is None else json.dumps(call.body).encode(),
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from None
        return _parse(response)

    def _start(self, path: str, body: dict[str, Any]) -> BackendSession:
        session = _session(self._send(_Call("POST", path, body, None)))
        self._core.session = session
        self._virgil = self._twilio = None
        return session

    def signup(self, identity: str, password: str) -> BackendSession:
        """Register and sign in."""
        return self._start("/signup", _Core.credentials(identity, password))

    def login(self, identity: str, password: str) -> BackendSession:
        """Sign in with a password."""
        return self._start("/authenticate", _Core.credentials(identity, password))

    def login_passwordless(self, identity: str) -> BackendSession:
        """The Virgil sample's ``{identity}`` sign-in (development-mode backends only)."""
        return self._start("/authenticate", _Core.credentials(identity, None))

    def logout(self, *, all_sessions: bool = False) -> int:
        """Revoke this session (or every session of the identity); returns how many."""
        call = _Call("POST", "/logout", {"allSessions": all_sessions}, self._core.token())
        data = self._send(call)
        self._core.session = None
        self._virgil = self._twilio = None
        revoked = data.get("revoked")
        return revoked if isinstance(revoked, int) else 0

    def me(self) -> dict[str, Any]:
        return self._send(_Call("GET", "/me", None, self._core.token()))

    def _fetch(self, path: str, key: str, token: str) -> str:
        return _string(self._send(_Call("GET", path, None, token)), key)

    def fetch_virgil_jwt(self) -> str:
        """A fresh Virgil JWT for the signed-in identity (no caching)."""
        return self._fetch("/virgil-jwt", "virgilToken", self._core.token())

    def fetch_twilio_token(self) -> str:
        """A fresh Twilio access token for the signed-in identity (no caching)."""
        return self._fetch("/twilio-jwt", "twilioToken", self._core.token())

    def virgil_token_callback(self) -> str:
        """E3Kit's ``tokenCallback``: a Virgil JWT (cached by this session's provider)."""
        return self.virgil_token_provider().get_token()

    def _bound(self, path: str, key: str) -> Callable[[], str]:
        token = self._core.token()  # the provider stays bound to this session
        return lambda: self._fetch(path, key, token)

    def virgil_token_provider(self) -> CachingJwtProvider:
        """The caching Virgil JWT provider of the current session."""
        if self._virgil is None:
            self._virgil = CachingJwtProvider(self._bound("/virgil-jwt", "virgilToken"))
        return self._virgil

    def twilio_token_provider(self) -> CachingJwtProvider:
        """The caching Twilio access-token provider of the current session."""
        if self._twilio is None:
            self._twilio = CachingJwtProvider(self._bound("/twilio-jwt", "twilioToken"))
        return self._twilio

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- async --------------------------------------------------------------------------------------


class AsyncBackendClient:
    """Asynchronous client of the token backend (same API, awaitable)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = _Core(base_url)
        self._http = httpx.AsyncClient(
            base_url=self._core.base_url, timeout=timeout, transport=transport, trust_env=False
        )
        self._virgil: AsyncCachingJwtProvider | None = None
        self._twilio: AsyncCachingJwtProvider | None = None

    @property
    def session(self) -> BackendSession | None:
        return self._core.session

    @property
    def identity(self) -> str | None:
        return None if self._core.session is None else self._core.session.identity

    async def _send(self, call: _Call) -> dict[str, Any]:
        try:
            response = await self._http.request(
                call.method,
                call.path,
                headers=_headers(call),
                content=None if call.body is None else json.dumps(call.body).encode(),
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from None
        return _parse(response)

    async def _start(self, path: str, body: dict[str, Any]) -> BackendSession:
        session = _session(await self._send(_Call("POST", path, body, None)))
        self._core.session = session
        self._virgil = self._twilio = None
        return session

    async def signup(self, identity: str, password: str) -> BackendSession:
        return await self._start("/signup", _Core.credentials(identity, password))

    async def login(self, identity: str, password: str) -> BackendSession:
        return await self._start("/authenticate", _Core.credentials(identity, password))

    async def login_passwordless(self, identity: str) -> BackendSession:
        return await self._start("/authenticate", _Core.credentials(identity, None))

    async def logout(self, *, all_sessions: bool = False) -> int:
        call = _Call("POST", "/logout", {"allSessions": all_sessions}, self._core.token())
        data = await self._send(call)
        self._core.session = None
        self._virgil = self._twilio = None
        revoked = data.get("revoked")
        return revoked if isinstance(revoked, int) else 0

    async def me(self) -> dict[str, Any]:
        return await self._send(_Call("GET", "/me", None, self._core.token()))

    async def _fetch(self, path: str, key: str, token: str) -> str:
        return _string(await self._send(_Call("GET", path, None, token)), key)

    async def fetch_virgil_jwt(self) -> str:
        return await self._fetch("/virgil-jwt", "virgilToken", self._core.token())

    async def fetch_twilio_token(self) -> str:
        return await self._fetch("/twilio-jwt", "twilioToken", self._core.token())

    async def virgil_token_callback(self) -> str:
        """E3Kit's ``tokenCallback`` (async): a cached Virgil JWT."""
        return await self.virgil_token_provider().get_token()

    def _bound(self, path: str, key: str) -> Callable[[], Any]:
        token = self._core.token()

        async def fetch() -> str:
            return await self._fetch(path, key, token)

        return fetch

    def virgil_token_provider(self) -> AsyncCachingJwtProvider:
        if self._virgil is None:
            self._virgil = AsyncCachingJwtProvider(self._bound("/virgil-jwt", "virgilToken"))
        return self._virgil

    def twilio_token_provider(self) -> AsyncCachingJwtProvider:
        if self._twilio is None:
            self._twilio = AsyncCachingJwtProvider(self._bound("/twilio-jwt", "twilioToken"))
        return self._twilio

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncBackendClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
