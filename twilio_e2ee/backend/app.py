"""The token backend: Virgil's Twilio sample-backend endpoints behind real authentication.

Endpoints (JSON; errors are ``{"error": "...", "code": "..."}`` with a 4xx status):

- ``POST /signup {identity, password}`` → 201 ``{authToken, identity, expiresAt}``
- ``POST /authenticate {identity, password}`` → ``{authToken, identity, expiresAt}``;
  in development mode only, also the sample's password-less ``{identity}``
- ``GET /virgil-jwt`` → ``{virgilToken}``, ``GET /twilio-jwt`` → ``{twilioToken}``,
  ``GET /me`` → ``{identity, expiresAt}``, ``POST /logout [{allSessions}]`` → ``{revoked}``,
  all with ``Authorization: Bearer <authToken>``
- ``GET /healthz`` → ``{status, mode}``

The identity always comes from the session, never from the query or the body. A request that
fails authentication is answered there and the handler never runs (the sample answers 401 and
runs it anyway). Failed logins are rate-limited per identity and per client address (429 with
``Retry-After``); while limited, no password is even checked.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from twilio_e2ee.backend.config import BackendConfig
from twilio_e2ee.backend.sessions import (
    FailedLoginLimiter,
    Session,
    SessionRevokedError,
    SessionStore,
    UnknownSessionError,
)
from twilio_e2ee.backend.users import (
    Database,
    IdentityTakenError,
    InvalidCredentialsError,
    InvalidInputError,
    UserStore,
    validate_identity,
    validate_password,
)
from twilio_e2ee.errors import TokenExpiredError
from twilio_e2ee.http_body import (
    BodyTooLargeError,
    InvalidContentLengthError,
    MalformedJsonError,
    parse_json,
    read_body,
)
from twilio_e2ee.tokens.twilio_token import create_twilio_access_token
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt

__all__ = ["ApiError", "Backend", "create_backend_app"]

log = logging.getLogger("twilio_e2ee.backend")


class ApiError(Exception):
    """An error answered as ``{"error", "code"}`` with an HTTP status."""

    def __init__(
        self, status: int, message: str, code: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


def _unauthorized(message: str, code: str) -> ApiError:
    return ApiError(401, message, code, {"WWW-Authenticate": 'Bearer realm="twilio-e2ee"'})


class Backend:
    """The backend's state and operations (users, sessions, limiters, token minting)."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.db = Database(config.db_path)
        self.users = UserStore(self.db, config.password_hasher, clock=config.clock)
        self.sessions = SessionStore(self.db, ttl=config.session_ttl, clock=config.clock)
        window = config.failed_login_window
        self.identity_limiter = FailedLoginLimiter(
            limit=config.max_failed_logins_per_identity, window=window, clock=config.clock
        )
        self.address_limiter = FailedLoginLimiter(
            limit=config.max_failed_logins_per_address, window=window, clock=config.clock
        )
        # Argon2 needs 64 MiB per hash by default: bound how many run at once.
        self._hash_slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
        self.mints: Counter[str] = Counter()  # tokens issued, by kind (for tests and metrics)

    @property
    def mode(self) -> str:
        return "development" if self.config.development else "production"

    # --- request helpers ------------------------------------------------------------------

    async def json_body(self, request: Request, *, optional: bool = False) -> dict[str, Any]:
        limit = self.config.max_body_bytes
        try:
            body = await read_body(request, limit)
        except InvalidContentLengthError as exc:
            raise ApiError(400, str(exc), "invalid_request") from None
        except BodyTooLargeError as exc:
            raise ApiError(413, str(exc), "body_too_large") from None
        if not body.strip():
            if optional:
                return {}
            raise ApiError(400, "a JSON object body is required", "malformed_json")
        try:
            data = parse_json(body)
        except MalformedJsonError as exc:
            raise ApiError(400, str(exc), "malformed_json") from None
        if not isinstance(data, dict):
            raise ApiError(400, "request body must be a JSON object", "malformed_json")
        return data

    def session_of(self, request: Request) -> Session:
        header = request.headers.get("authorization")
        if not header:
            raise _unauthorized("missing Authorization: Bearer <authToken>", "missing_token")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 512:
            raise _unauthorized("Authorization must be 'Bearer <authToken>'", "malformed_token")
        try:
            return self.sessions.lookup(token)
        except UnknownSessionError:
            raise _unauthorized("unknown session: sign in again", "invalid_session") from None
        except SessionRevokedError:
            raise _unauthorized("session was revoked: sign in again", "session_revoked") from None
        except TokenExpiredError:
            raise _unauthorized("session expired: sign in again", "session_expired") from None

    @staticmethod
    def client_address(request: Request) -> str:
        return request.client.host if request.client is not None else "unknown"

    def _hash_call(self, fn: Callable[[], Any]) -> Any:
        with self._hash_slots:
            return fn()

    @staticmethod
    def _session_body(session: Session) -> dict[str, Any]:
        return {
            "authToken": session.token,
            "identity": session.identity,
            "expiresAt": int(session.expires_at),
        }

    # --- endpoints ------------------------------------------------------------------------

    async def signup(self, request: Request) -> Response:
        body = await self.json_body(request)
        try:
            identity = validate_identity(body.get("identity"))
            password = validate_password(body.get("password"), self.config.min_password_length)
        except InvalidInputError as exc:
            raise ApiError(400, str(exc), "invalid_request") from None
        if self.users.exists(identity):
            raise ApiError(409, "identity is already registered", "identity_taken")
        try:
            await run_in_threadpool(self._hash_call, lambda: self.users.create(identity, password))
        except IdentityTakenError:
            raise ApiError(409, "identity is already registered", "identity_taken") from None
        # The identity is now password-protected: end any password-less (development) sessions.
        self.sessions.revoke_all(identity)
        session = self.sessions.create(identity)
        log.info("signed up %r", identity)
        return JSONResponse(self._session_body(session), status_code=201)

    async def authenticate(self, request: Request) -> Response:
        body = await self.json_body(request)
        try:
            identity = validate_identity(body.get("identity"))
        except InvalidInputError as exc:
            raise ApiError(400, str(exc), "invalid_request") from None
        if "password" not in body:
            return self._passwordless(identity)
        try:
            password = validate_password(body.get("password"), 1)
        except InvalidInputError as exc:
            raise ApiError(400, str(exc), "invalid_request") from None
        address = "ip:" + self.client_address(request)
        who = "id:" + identity
        # Each limiter checks and counts the attempt in one step (no check-then-act race).
        wait = self.identity_limiter.begin_attempt(who)
        if not wait:
            wait = self.address_limiter.begin_attempt(address)
            if wait:
                self.identity_limiter.forgive(who)
        if wait:
            raise ApiError(
                429,
                f"too many failed sign-ins: retry in {wait} s",
                "too_many_attempts",
                {"Retry-After": str(wait)},
            )
        try:
            await run_in_threadpool(
                self._hash_call, lambda: self.users.authenticate(identity, password)
            )
        except InvalidCredentialsError:
            log.info("failed sign-in for %r from %s", identity, address)  # stays counted
            raise _unauthorized(
                "unknown identity or wrong password", "invalid_credentials"
            ) from None
        except BaseException:
            self.identity_limiter.forgive(who)  # not a failed sign-in: nothing was checked
            self.address_limiter.forgive(address)
            raise
        self.identity_limiter.reset(who)
        self.address_limiter.forgive(address)
        return JSONResponse(self._session_body(self.sessions.create(identity)))

    def _passwordless(self, identity: str) -> Response:
        if not self.config.development:
            raise ApiError(
                400, "password required (password-less sign-in is off)", "password_required"
            )
        if self.users.exists(identity):
            raise _unauthorized(
                "this identity has a password: sign in with it", "password_required"
            )
        session = self.sessions.create(identity, passwordless=True)
        log.warning("development mode: password-less sign-in as %r", identity)
        return JSONResponse(self._session_body(session))

    async def virgil_jwt(self, request: Request, session: Session) -> Response:
        token = generate_virgil_jwt(
            self.config.credentials.virgil,
            session.identity,
            ttl=self.config.virgil_token_ttl,
            now=self.config.clock(),
        )
        self.mints["virgil"] += 1
        return JSONResponse({"virgilToken": token})

    async def twilio_jwt(self, request: Request, session: Session) -> Response:
        token = create_twilio_access_token(
            self.config.credentials.twilio,
            session.identity,
            ttl=self.config.twilio_token_ttl,
            now=self.config.clock(),
        )
        self.mints["twilio"] += 1
        return JSONResponse({"twilioToken": token})

    async def me(self, request: Request, session: Session) -> Response:
        return JSONResponse({"identity": session.identity, "expiresAt": int(session.expires_at)})

    async def logout(self, request: Request, session: Session) -> Response:
        body = await self.json_body(request, optional=True)
        everywhere = body.get("allSessions", False)
        if not isinstance(everywhere, bool):
            raise ApiError(400, "allSessions must be true or false", "invalid_request")
        if everywhere:
            revoked = self.sessions.revoke_all(session.identity)
        else:
            token = request.headers["authorization"].partition(" ")[2].strip()
            revoked = int(self.sessions.revoke(token))
        return JSONResponse({"revoked": revoked})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "mode": self.mode})

    def authenticated(
        self, handler: Callable[[Request, Session], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler so it runs only for a live session (else 401, and nothing runs)."""

        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)  # raises ApiError: the handler is never called
            return await handler(request, session)

        return endpoint


class _JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, but a refused preflight is a JSON ``{"error", "code"}``."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        skip = {"content-type", "content-length"}
        headers = {k: v for k, v in response.headers.items() if k.lower() not in skip}
        message = bytes(response.body).decode("utf-8", "replace")
        return JSONResponse(
            {"error": message, "code": "cors_rejected"}, response.status_code, headers
        )


def _error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.message, "code": exc.code}, status_code=exc.status, headers=exc.headers
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return JSONResponse(
        {"error": exc.detail, "code": codes.get(exc.status_code, "http_error")},
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s %s: %r", request.method, request.url.path, exc)
    return JSONResponse({"error": "internal server error", "code": "internal"}, status_code=500)


def create_backend_app(config: BackendConfig) -> Starlette:
    """The backend as a Starlette app (serve it with uvicorn or ``ServerThread``).

    ``app.state.backend`` is the :class:`Backend` (users, sessions, mint counters).
    """
    backend = Backend(config)
    routes = [
        Route("/signup", backend.signup, methods=["POST"]),
        Route("/authenticate", backend.authenticate, methods=["POST"]),
        Route("/virgil-jwt", backend.authenticated(backend.virgil_jwt), methods=["GET"]),
        Route("/twilio-jwt", backend.authenticated(backend.twilio_jwt), methods=["GET"]),
        Route("/me", backend.authenticated(backend.me), methods=["GET"]),
        Route("/logout", backend.authenticated(backend.logout), methods=["POST"]),
        Route("/healthz", backend.healthz, methods=["GET"]),
    ]
    middleware = []
    if config.cors_origins:
        middleware.append(
            Middleware(
                _JsonCORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.state.backend = backend
    if config.development:
        log.warning(
            "token backend in DEVELOPMENT mode: password-less {identity} sign-in is accepted "
            "(Virgil sample front-end); never expose this to a network"
        )
    else:
        log.info("token backend in production mode: sign-in requires a password")
    if config.credentials.development:
        log.warning(
            "token backend uses generated development credentials: tokens are valid only "
            "for the bundled mock services"
        )
    return app
