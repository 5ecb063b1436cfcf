"""Who is calling: HTTP Basic (Account SID + auth token, or API key SID + secret) as Twilio's REST
API requires, plus a mock-only "client mode" with a Twilio access token.

Real Twilio does not accept access tokens on REST (its client SDKs use a private websocket). The
mock accepts one in ``X-Twilio-Token`` (or ``Authorization: Bearer``) so notebooks can show what a
user-level client may do: the author is then always the token's identity. Tokens are checked as
Twilio does (``twilio_e2ee.tokens.twilio_token``): HS256 under the API key secret, ``cty``
``twilio-fpa;v=1``, ``iss`` the API key, ``sub`` the account, not expired, lifetime at most 24 h;
refusals are 401s with Twilio's codes (20101–20107, 20157).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any

from mock_services.twilio.errors import AUTHENTICATION_FAILED, TwilioApiError
from twilio_e2ee.errors import E2EEError
from twilio_e2ee.tokens.twilio_token import TwilioTokenError, verify_twilio_access_token

__all__ = ["Principal", "authenticate"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key it used, and the identity/service of an access token."""

    username: str
    identity: str | None = None
    service_sid: str | None = None


def _unauthorized(message: str = "Authentication Error - invalid username") -> TwilioApiError:
    return TwilioApiError(
        401,
        AUTHENTICATION_FAILED,
        message,
        detail="Your AccountSid or AuthToken was incorrect.",
        headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
    )


def _token_error(code: int, message: str) -> TwilioApiError:
    return TwilioApiError(401, code, message)


def authenticate(
    headers: Any,
    *,
    account_sid: str,
    auth_token: str,
    api_key_sid: str,
    api_secret: str,
) -> Principal:
    """Check the request's credentials; raises a 401 :class:`TwilioApiError` otherwise."""
    authorization: str = headers.get("authorization", "")
    token = headers.get("x-twilio-token")
    if authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
    if token:
        return _verify_access_token(
            token, account_sid=account_sid, api_key_sid=api_key_sid, api_secret=api_secret
        )
    if authorization[:6].lower() != "basic ":
        raise _unauthorized("Authenticate")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthorized() from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise _unauthorized()
    for user, secret in ((account_sid, auth_token), (api_key_sid, api_secret)):
        if hmac.compare_digest(username.encode(), user.encode()):
            if hmac.compare_digest(password.encode(), secret.encode()):
                return Principal(username)
            raise _unauthorized("Authentication Error - invalid password")
    raise _unauthorized()


def _verify_access_token(
    token: str, *, account_sid: str, api_key_sid: str, api_secret: str
) -> Principal:
    try:
        verified = verify_twilio_access_token(
            token, signing_keys={api_key_sid: api_secret}, account_sid=account_sid
        )
    except TwilioTokenError as exc:
        raise _token_error(exc.twilio_code, f"Invalid Access Token: {exc}") from None
    except E2EEError as exc:
        raise _token_error(20101, f"Invalid Access Token: {exc}") from None
    return Principal(api_key_sid, identity=verified.identity, service_sid=verified.service_sid)
