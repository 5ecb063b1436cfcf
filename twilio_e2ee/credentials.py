"""Credentials shared by the token backend and the mock services.

Environment variables use the names of Virgil's Twilio sample backend. With none set, fresh
development credentials are generated, so the whole stack runs offline; a partial set is an error
that names what is missing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from twilio_e2ee.crypto.keys import PrivateKey, PublicKey, generate_key_pair, import_private_key
from twilio_e2ee.errors import ConfigurationError, E2EEError

__all__ = [
    "ENV_NAMES",
    "StackCredentials",
    "TwilioCredentials",
    "VirgilAppCredentials",
    "credentials_from_env",
    "generate_development_credentials",
    "new_twilio_sid",
]

ENV_NAMES = (
    "APP_ID",
    "APP_KEY",
    "APP_KEY_ID",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_API_KEY_SID",
    "TWILIO_API_SECRET",
    "TWILIO_SERVICE_SID",
)


def new_twilio_sid(prefix: str) -> str:
    """A Twilio-style SID: a two-letter prefix and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class VirgilAppCredentials:
    """A Virgil application: its id and the app key that signs Virgil JWTs."""

    app_id: str
    app_key: PrivateKey
    app_key_id: str

    @property
    def app_public_key(self) -> PublicKey:
        return self.app_key.public_key

    def __repr__(self) -> str:
        return f"VirgilAppCredentials(app_id={self.app_id!r}, app_key_id={self.app_key_id!r})"


@dataclass(frozen=True)
class TwilioCredentials:
    """A Twilio account, an API key for access tokens, and the Conversations service SID.

    ``auth_token`` is only known for the offline stack (the mock accepts it for REST calls);
    against real Twilio the backend needs only the API key and secret.
    """

    account_sid: str
    api_key_sid: str
    api_secret: str
    service_sid: str
    auth_token: str | None = None

    def __repr__(self) -> str:
        return (
            f"TwilioCredentials(account_sid={self.account_sid!r}, "
            f"api_key_sid={self.api_key_sid!r}, service_sid={self.service_sid!r})"
        )


@dataclass(frozen=True)
class StackCredentials:
    """Everything the offline stack shares: Virgil app, Twilio account, and whether it is dev."""

    virgil: VirgilAppCredentials
    twilio: TwilioCredentials
    development: bool


def generate_development_credentials() -> StackCredentials:
    """Fresh random credentials for the offline stack (never valid against the real services)."""
    app_key = generate_key_pair().private_key
    virgil = VirgilAppCredentials(
        app_id=secrets.token_hex(16),
        app_key=app_key,
        app_key_id=app_key.identifier.hex(),
    )
    twilio = TwilioCredentials(
        account_sid=new_twilio_sid("AC"),
        api_key_sid=new_twilio_sid("SK"),
        api_secret=secrets.token_urlsafe(32)[:32],
        service_sid=new_twilio_sid("IS"),
        auth_token=secrets.token_hex(16),
    )
    return StackCredentials(virgil=virgil, twilio=twilio, development=True)


def credentials_from_env(env: Mapping[str, str] | None = None) -> StackCredentials:
    """Read credentials from the environment (sample-backend names), or generate dev ones.

    Raises ConfigurationError naming the missing variables when only some are set, or when
    ``APP_KEY`` is not an Ed25519 private key.
    """
    env = os.environ if env is None else env
    present = [name for name in ENV_NAMES if env.get(name)]
    if not present:
        return generate_development_credentials()
    missing = [name for name in ENV_NAMES if not env.get(name)]
    if missing:
        raise ConfigurationError(
            "incomplete configuration: set all of "
            + ", ".join(ENV_NAMES)
            + " (or none, for offline development); missing: "
            + ", ".join(missing)
        )
    try:
        app_key = import_private_key(env["APP_KEY"])
    except E2EEError as exc:
        raise ConfigurationError(f"APP_KEY is not a usable Ed25519 private key: {exc}") from None
    virgil = VirgilAppCredentials(env["APP_ID"], app_key, env["APP_KEY_ID"])
    twilio = TwilioCredentials(
        account_sid=env["TWILIO_ACCOUNT_SID"],
        api_key_sid=env["TWILIO_API_KEY_SID"],
        api_secret=env["TWILIO_API_SECRET"],
        service_sid=env["TWILIO_SERVICE_SID"],
        auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
    )
    return StackCredentials(virgil=virgil, twilio=twilio, development=False)
