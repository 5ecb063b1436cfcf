"""Tokens: Virgil JWTs (VEDS512) and Twilio access tokens, created and verified (sans-I/O)."""

from twilio_e2ee.tokens.twilio_token import (
    TwilioAccessToken,
    TwilioTokenError,
    TwilioTokenExpiredError,
    create_twilio_access_token,
    verify_twilio_access_token,
    verify_twilio_access_token_with,
)
from twilio_e2ee.tokens.virgil_jwt import (
    MalformedTokenError,
    VirgilJwt,
    encode_virgil_jwt,
    generate_virgil_jwt,
    parse_virgil_jwt,
    verify_virgil_jwt,
)

__all__ = [
    "MalformedTokenError",
    "TwilioAccessToken",
    "TwilioTokenError",
    "TwilioTokenExpiredError",
    "VirgilJwt",
    "create_twilio_access_token",
    "encode_virgil_jwt",
    "generate_virgil_jwt",
    "parse_virgil_jwt",
    "verify_twilio_access_token",
    "verify_twilio_access_token_with",
    "verify_virgil_jwt",
]
