"""Configuration of the token backend (credentials, mode, storage, limits)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher

from twilio_e2ee.credentials import StackCredentials, credentials_from_env
from twilio_e2ee.errors import ConfigurationError
from twilio_e2ee.tokens.twilio_token import MIN_SECRET_BYTES

__all__ = ["BackendConfig"]


@dataclass(frozen=True)
class BackendConfig:
    """Everything :func:`twilio_e2ee.backend.create_backend_app` needs.

    ``development`` enables the Virgil sample's password-less ``{identity}`` sign-in (never in
    production). ``db_path`` is the SQLite file of users and sessions (``None`` or ``":memory:"``
    keeps them in memory). Times are in seconds; ``clock`` is for tests.
    """

    credentials: StackCredentials
    development: bool = False
    db_path: str | Path | None = None
    session_ttl: float = 12 * 3600
    virgil_token_ttl: float = 20 * 60
    twilio_token_ttl: int = 3600
    min_password_length: int = 8
    max_failed_logins_per_identity: int = 5
    max_failed_logins_per_address: int = 20
    failed_login_window: float = 15 * 60
    cors_origins: tuple[str, ...] = ("*",)
    max_body_bytes: int = 16 * 1024
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if not isinstance(self.credentials, StackCredentials):
            raise ConfigurationError("BackendConfig.credentials must be StackCredentials")
        if self.session_ttl <= 0 or self.virgil_token_ttl <= 0:
            raise ConfigurationError("session and token lifetimes must be positive")
        if not 0 < self.twilio_token_ttl <= 24 * 3600:
            raise ConfigurationError("twilio_token_ttl must be in 1..86400 seconds (Twilio's cap)")
        if self.max_failed_logins_per_identity < 1 or self.max_failed_logins_per_address < 1:
            raise ConfigurationError("failed-login limits must be at least 1")
        if self.min_password_length < 1:
            raise ConfigurationError("min_password_length must be at least 1")
        if len(self.credentials.twilio.api_secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"TWILIO_API_SECRET must be at least {MIN_SECRET_BYTES} bytes (Twilio's are 32)"
            )

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        development: bool = False,
        production: bool = False,
        db_path: str | Path | None = None,
    ) -> BackendConfig:
        """Credentials from the environment (Virgil sample names), or generated dev ones.

        ``production`` additionally refuses generated credentials (all variables must be set);
        ``development`` and ``production`` are mutually exclusive.
        """
        if development and production:
            raise ConfigurationError("choose development or production mode, not both")
        credentials = credentials_from_env(env)
        if production and credentials.development:
            raise ConfigurationError(
                "production mode needs real credentials: set APP_ID, APP_KEY, APP_KEY_ID, "
                "TWILIO_ACCOUNT_SID, TWILIO_API_KEY_SID, TWILIO_API_SECRET, TWILIO_SERVICE_SID"
            )
        return cls(credentials=credentials, development=development, db_path=db_path)
