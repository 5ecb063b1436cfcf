"""Twilio access tokens for Conversations: created with the official helper, verified with PyJWT.

Created with ``twilio.jwt.access_token.AccessToken`` and a ``ChatGrant`` for the Conversations
service SID (Twilio's HS256 token, header ``cty: twilio-fpa;v=1``, ``iss`` = API key SID,
``sub`` = account SID). Verified as Twilio does: the secret is looked up by ``iss``; ``alg``,
``typ``, ``cty``, the signature, ``sub``, ``nbf``/``exp`` and a lifetime of at most 24 h are
checked. Never use ``twilio.jwt.Jwt.from_jwt`` without a key: it skips the signature check.

Errors carry Twilio's error code (``twilio_code``) so a mock service can answer as Twilio does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt as pyjwt
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import ChatGrant

from twilio_e2ee.credentials import TwilioCredentials
from twilio_e2ee.errors import ConfigurationError, TokenError, TokenExpiredError
from twilio_e2ee.tokens.jwt_parts import MalformedTokenError, current_time

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_TTL",
    "MAX_IDENTITY_LENGTH",
    "MAX_TTL",
    "MIN_SECRET_BYTES",
    "TwilioAccessToken",
    "TwilioTokenError",
    "TwilioTokenExpiredError",
    "create_twilio_access_token",
    "verify_twilio_access_token",
    "verify_twilio_access_token_with",
]

ALGORITHM = "HS256"
CONTENT_TYPE = "twilio-fpa;v=1"
DEFAULT_TTL = 3600
MAX_TTL = 24 * 3600
MIN_SECRET_BYTES = 32
MAX_IDENTITY_LENGTH = 256
DEFAULT_LEEWAY = 5.0
MAX_TOKEN_LENGTH = 16 * 1024

# Twilio's error codes for access tokens.
INVALID_TOKEN = 20101
INVALID_HEADER = 20102
INVALID_ISSUER_SUBJECT = 20103
EXPIRED = 20104
NOT_YET_VALID = 20105
INVALID_GRANTS = 20106
INVALID_SIGNATURE = 20107
TTL_TOO_LONG = 20157


class TwilioTokenError(TokenError):
    """A Twilio access token was refused; ``twilio_code`` is Twilio's error code (201xx)."""

    def __init__(self, message: str, *, twilio_code: int = INVALID_TOKEN) -> None:
        super().__init__(message)
        self.twilio_code = twilio_code


class TwilioTokenExpiredError(TwilioTokenError, TokenExpiredError):
    """A Twilio access token has expired (20104) or is not yet valid (20105)."""


class MalformedTwilioTokenError(TwilioTokenError, MalformedTokenError):
    """Not a well-formed JWT (20101)."""


@dataclass(frozen=True)
class TwilioAccessToken:
    """A verified Twilio access token."""

    identity: str
    account_sid: str
    api_key_sid: str
    service_sid: str
    not_before: int | None
    expires_at: int
    grants: dict[str, Any]
    raw: str = field(repr=False)
    header: dict[str, Any] = field(repr=False)
    payload: dict[str, Any] = field(repr=False)


def _check_secret(secret: object, api_key_sid: str) -> str:
    if not isinstance(secret, str) or len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"the secret of API key {api_key_sid} must be a string of at least "
            f"{MIN_SECRET_BYTES} bytes (Twilio's are 32 characters)"
        )
    return secret


def _check_identity(identity: object) -> str:
    if not isinstance(identity, str) or not identity:
        raise TwilioTokenError("identity must be a non-empty string", twilio_code=INVALID_GRANTS)
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise TwilioTokenError(
            f"identity longer than {MAX_IDENTITY_LENGTH} characters", twilio_code=INVALID_GRANTS
        )
    return identity


def create_twilio_access_token(
    credentials: TwilioCredentials,
    identity: str,
    *,
    ttl: int = DEFAULT_TTL,
    service_sid: str | None = None,
    now: float | None = None,
) -> str:
    """An access token with a Chat grant for the Conversations service, for ``identity``.

    ``service_sid`` defaults to ``credentials.service_sid``; ``ttl`` is in seconds (≤ 24 h).
    """
    if not isinstance(credentials, TwilioCredentials):
        raise TokenError(f"expected TwilioCredentials, got {type(credentials).__name__}")
    _check_identity(identity)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL:
        raise TwilioTokenError(
            f"ttl must be an integer number of seconds in 1..{MAX_TTL}", twilio_code=TTL_TOO_LONG
        )
    _check_secret(credentials.api_secret, credentials.api_key_sid)
    if service_sid is not None and (not isinstance(service_sid, str) or not service_sid):
        raise TwilioTokenError("service_sid must be a non-empty string", twilio_code=INVALID_GRANTS)
    nbf = math.floor(current_time(now, "Twilio access token"))
    token = AccessToken(
        credentials.account_sid,
        credentials.api_key_sid,
        credentials.api_secret,
        grants=[ChatGrant(service_sid=service_sid or credentials.service_sid)],
        identity=identity,
        nbf=nbf,
        valid_until=nbf + ttl,
    )
    result = token.to_jwt()
    return result if isinstance(result, str) else result.decode("ascii")


def _int_claim(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TwilioTokenError(f"claim {name!r} missing or not an integer", twilio_code=EXPIRED)
    return value


def verify_twilio_access_token(
    token: str,
    *,
    signing_keys: Mapping[str, str],
    account_sid: str,
    service_sid: str | None = None,
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> TwilioAccessToken:
    """Verify a Twilio access token with a Chat grant.

    ``signing_keys`` maps API key SIDs (``iss``) to their secrets; ``sub`` must be ``account_sid``;
    when ``service_sid`` is given the Chat grant must be for it. Raises TwilioTokenError
    (a TokenError with ``twilio_code``), TwilioTokenExpiredError, or ConfigurationError for a
    secret shorter than 32 bytes.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise MalformedTwilioTokenError("access token must be a non-empty string")
    if not token.isascii():
        raise MalformedTwilioTokenError("access token must be ASCII (a JWT)")
    if not isinstance(signing_keys, Mapping):
        raise ConfigurationError("signing_keys must map API key SIDs to their secrets")
    try:
        header = pyjwt.get_unverified_header(token)
        unverified = pyjwt.decode(token, options={"verify_signature": False})
    except pyjwt.PyJWTError as exc:
        raise MalformedTwilioTokenError(f"not a JWT ({exc})") from None
    if header.get("alg") != ALGORITHM or header.get("typ") != "JWT":
        raise TwilioTokenError("header must have alg HS256, typ JWT", twilio_code=INVALID_HEADER)
    if header.get("cty") != CONTENT_TYPE:
        raise TwilioTokenError(f"header cty must be {CONTENT_TYPE!r}", twilio_code=INVALID_HEADER)
    api_key_sid = unverified.get("iss")
    if not isinstance(api_key_sid, str) or api_key_sid not in signing_keys:
        raise TwilioTokenError("issued by an unknown API key", twilio_code=INVALID_ISSUER_SUBJECT)
    secret = _check_secret(signing_keys[api_key_sid], api_key_sid)
    try:
        payload = pyjwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "require": ["iss", "sub", "exp"],
            },
        )
    except pyjwt.InvalidSignatureError:
        raise TwilioTokenError("signature does not verify", twilio_code=INVALID_SIGNATURE) from None
    except pyjwt.PyJWTError as exc:
        raise TwilioTokenError(f"invalid access token ({exc})") from None
    if payload.get("sub") != account_sid:
        raise TwilioTokenError(
            "issued for another account (sub)", twilio_code=INVALID_ISSUER_SUBJECT
        )
    expires_at = _int_claim(payload, "exp")
    not_before = _int_claim(payload, "nbf") if "nbf" in payload else None
    start = not_before if not_before is not None else expires_at - MAX_TTL
    if expires_at <= start:
        raise TwilioTokenError("exp is not after nbf", twilio_code=EXPIRED)
    if expires_at - start > MAX_TTL:
        raise TwilioTokenError("lifetime exceeds 24 hours", twilio_code=TTL_TOO_LONG)
    now = current_time(now, "Twilio access token")
    if expires_at <= now - leeway:
        raise TwilioTokenExpiredError("access token expired", twilio_code=EXPIRED)
    if not_before is not None and not_before > now + leeway:
        raise TwilioTokenExpiredError("access token not yet valid", twilio_code=NOT_YET_VALID)
    if expires_at - now > MAX_TTL + leeway:
        raise TwilioTokenError("lifetime exceeds 24 hours", twilio_code=TTL_TOO_LONG)
    grants = payload.get("grants")
    if not isinstance(grants, dict):
        raise TwilioTokenError("no grants", twilio_code=INVALID_GRANTS)
    identity = grants.get("identity")
    if not isinstance(identity, str) or not identity or len(identity) > MAX_IDENTITY_LENGTH:
        raise TwilioTokenError("grants carry no valid identity", twilio_code=INVALID_GRANTS)
    chat = grants.get("chat", grants.get("ip_messaging"))
    granted_service = chat.get("service_sid") if isinstance(chat, dict) else None
    if not isinstance(granted_service, str) or not granted_service:
        raise TwilioTokenError("no Chat grant with a service_sid", twilio_code=INVALID_GRANTS)
    if service_sid is not None and granted_service != service_sid:
        raise TwilioTokenError("Chat grant is for another service", twilio_code=INVALID_GRANTS)
    return TwilioAccessToken(
        identity=identity,
        account_sid=account_sid,
        api_key_sid=api_key_sid,
        service_sid=granted_service,
        not_before=not_before,
        expires_at=expires_at,
        grants=grants,
        raw=token,
        header=header,
        payload=payload,
    )


def verify_twilio_access_token_with(
    token: str,
    credentials: TwilioCredentials,
    *,
    check_service: bool = True,
    now: float | None = None,
) -> TwilioAccessToken:
    """Verify against one account's credentials (its API key, account and service SIDs)."""
    return verify_twilio_access_token(
        token,
        signing_keys={credentials.api_key_sid: credentials.api_secret},
        account_sid=credentials.account_sid,
        service_sid=credentials.service_sid if check_service else None,
        now=now,
    )
