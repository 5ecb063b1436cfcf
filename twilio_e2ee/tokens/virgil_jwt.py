"""Virgil JWTs ("VEDS512"): create, parse and verify, byte-compatible with Virgil's SDKs (sans-I/O).

    header  {"alg":"VEDS512","kid":<app key id>,"typ":"JWT","cty":"virgil-jwt;v=1"}
    body    {"iss":"virgil-<APP_ID>","sub":"identity-<identity>","iat":<s>,"exp":<s>,"ada"?:{…}}
    token   b64url(header) "." b64url(body) "." b64url(Virgil signature of the ASCII signing input)

The signature is Virgil's DER-wrapped Ed25519 over SHA-512 (83 bytes), from
:mod:`twilio_e2ee.crypto.signatures`. PyJWT cannot produce or check it, hence this module.
Header and body are serialised as compact JSON in insertion order (the JS generator's order);
the signature covers the exact bytes received, so tokens from SDKs that sort keys verify too.
Non-ASCII text is written as JSON unicode escapes: Virgil's JS SDK base64-encodes JSON as Latin-1
(it cannot encode other characters and mis-reads UTF-8), while pure-ASCII JSON reads the same
everywhere. On parsing, a part that is not UTF-8 is read as Latin-1, as the JS SDK wrote it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twilio_e2ee.credentials import VirgilAppCredentials
from twilio_e2ee.crypto.keys import PrivateKey, PublicKey
from twilio_e2ee.crypto.signatures import check_signature, sign
from twilio_e2ee.errors import E2EEError, TokenError, TokenExpiredError
from twilio_e2ee.tokens.jwt_parts import (
    MalformedTokenError,
    b64url_decode,
    b64url_encode,
    current_time,
    json_part,
    split_token,
)

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_TTL",
    "ISSUER_PREFIX",
    "SIGNATURE_ALGORITHM",
    "SUBJECT_PREFIX",
    "MalformedTokenError",
    "VirgilJwt",
    "encode_virgil_jwt",
    "generate_virgil_jwt",
    "parse_virgil_jwt",
    "verify_virgil_jwt",
]

SIGNATURE_ALGORITHM = "VEDS512"
TOKEN_TYPE = "JWT"
CONTENT_TYPE = "virgil-jwt;v=1"
ISSUER_PREFIX = "virgil-"
SUBJECT_PREFIX = "identity-"
DEFAULT_TTL = 20 * 60  # seconds, as Virgil's JS JwtGenerator
DEFAULT_LEEWAY = 5.0  # seconds of clock skew tolerated on iat / exp


def _compact_json(value: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
            "ascii"
        )
    except (TypeError, ValueError) as exc:
        raise TokenError(f"Virgil JWT: cannot serialise claims as JSON ({exc})") from None


def _string(obj: Mapping[str, Any], name: str, what: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise MalformedTokenError(f"Virgil JWT: {what} field {name!r} missing or not a string")
    return value


def _seconds(obj: Mapping[str, Any], name: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedTokenError(f"Virgil JWT: claim {name!r} missing or not an integer")
    return value


@dataclass(frozen=True)
class VirgilJwt:
    """A parsed Virgil JWT. ``raw`` is the token string exactly as received."""

    identity: str
    app_id: str
    key_id: str
    issued_at: int
    expires_at: int
    additional_data: dict[str, Any] | None
    raw: str
    header: dict[str, Any] = field(repr=False)
    body: dict[str, Any] = field(repr=False)
    signature: bytes = field(repr=False)

    @property
    def signing_input(self) -> bytes:
        """The ASCII ``header.body`` the signature covers."""
        return self.raw.rsplit(".", 1)[0].encode("ascii")

    def is_expired(self, now: float | None = None, *, leeway: float = 0.0) -> bool:
        """True if ``exp`` is at or before ``now`` (+ leeway), as Virgil's Jwt.isExpired."""
        return self.expires_at <= current_time(now, "Virgil JWT") - leeway

    def __str__(self) -> str:
        return self.raw


def encode_virgil_jwt(
    header: Mapping[str, Any], body: Mapping[str, Any], private_key: PrivateKey
) -> str:
    """Serialise and sign a header and body exactly as given (key order kept).

    Low-level: :func:`generate_virgil_jwt` builds the standard header and claims. Use this to
    reproduce a token whose key order differs (some SDKs sort keys).
    """
    if not isinstance(private_key, PrivateKey):
        raise TokenError(f"Virgil JWT: expected a PrivateKey, got {type(private_key).__name__}")
    signing_input = b64url_encode(_compact_json(header)) + "." + b64url_encode(_compact_json(body))
    signature = sign(signing_input.encode("ascii"), private_key)
    return signing_input + "." + b64url_encode(signature)


def _check_identity(identity: object) -> str:
    if not isinstance(identity, str) or not identity:
        raise TokenError("Virgil JWT: identity must be a non-empty string")
    try:
        identity.encode("utf-8")
    except UnicodeEncodeError:
        raise TokenError("Virgil JWT: identity is not valid text (lone surrogate)") from None
    return identity


def generate_virgil_jwt(
    app: VirgilAppCredentials,
    identity: str,
    *,
    ttl: float = DEFAULT_TTL,
    additional_data: dict[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """Mint a Virgil JWT for ``identity``, signed with the app key (as Virgil's JwtGenerator).

    ``ttl`` is in seconds (default 20 minutes); ``now`` (epoch seconds) is for tests.
    """
    if not isinstance(app, VirgilAppCredentials):
        raise TokenError(f"Virgil JWT: expected VirgilAppCredentials, got {type(app).__name__}")
    _check_identity(identity)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < math.inf:
        raise TokenError("Virgil JWT: ttl must be a positive number of seconds")
    if additional_data is not None and not isinstance(additional_data, dict):
        raise TokenError("Virgil JWT: additional_data must be a dict (JSON object)")
    now = current_time(now, "Virgil JWT")
    header = {
        "alg": SIGNATURE_ALGORITHM,
        "kid": app.app_key_id,
        "typ": TOKEN_TYPE,
        "cty": CONTENT_TYPE,
    }
    body: dict[str, Any] = {
        "iss": ISSUER_PREFIX + app.app_id,
        "sub": SUBJECT_PREFIX + identity,
        "iat": math.floor(now),
        "exp": math.floor(now + ttl),
    }
    if additional_data is not None:
        body["ada"] = additional_data
    return encode_virgil_jwt(header, body, app.app_key)


def parse_virgil_jwt(token: str) -> VirgilJwt:
    """Decode a Virgil JWT without verifying it; raise MalformedTokenError if it is not one."""
    parts = split_token(token, "Virgil JWT")
    header = json_part(parts[0], "Virgil JWT: header")
    body = json_part(parts[1], "Virgil JWT: body")
    signature = b64url_decode(parts[2], "Virgil JWT: signature")
    key_id = _string(header, "kid", "header")
    for name in ("alg", "typ", "cty"):
        _string(header, name, "header")
    issuer = _string(body, "iss", "body")
    subject = _string(body, "sub", "body")
    if not issuer.startswith(ISSUER_PREFIX) or len(issuer) == len(ISSUER_PREFIX):
        raise MalformedTokenError(f"Virgil JWT: issuer must be '{ISSUER_PREFIX}<APP_ID>'")
    if not subject.startswith(SUBJECT_PREFIX) or len(subject) == len(SUBJECT_PREFIX):
        raise MalformedTokenError(f"Virgil JWT: subject must be '{SUBJECT_PREFIX}<identity>'")
    ada = body.get("ada")
    if ada is not None and not isinstance(ada, dict):
        raise MalformedTokenError("Virgil JWT: claim 'ada' must be a JSON object")
    return VirgilJwt(
        identity=subject[len(SUBJECT_PREFIX) :],
        app_id=issuer[len(ISSUER_PREFIX) :],
        key_id=key_id,
        issued_at=_seconds(body, "iat"),
        expires_at=_seconds(body, "exp"),
        additional_data=ada,
        raw=".".join(parts),
        header=header,
        body=body,
        signature=signature,
    )


def verify_virgil_jwt(
    token: str,
    *,
    app_public_key: PublicKey,
    app_key_id: str,
    app_id: str | None = None,
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> VirgilJwt:
    """Parse and fully verify a Virgil JWT, as Virgil's JwtVerifier plus the service's checks.

    Checks ``alg``/``typ``/``cty``, ``kid`` == ``app_key_id``, ``iss`` (when ``app_id`` is given),
    the signature under ``app_public_key``, and ``iat``/``exp`` against ``now`` with ``leeway``
    seconds of clock skew. Raises TokenError (MalformedTokenError) or TokenExpiredError.
    """
    if not isinstance(app_public_key, PublicKey):
        raise TokenError(
            f"Virgil JWT: expected a PublicKey to verify with, got {type(app_public_key).__name__}"
        )
    jwt = parse_virgil_jwt(token)
    header = jwt.header
    if header["alg"] != SIGNATURE_ALGORITHM:
        raise TokenError(f"Virgil JWT: unsupported algorithm (alg) {header['alg']!r}")
    if header["typ"] != TOKEN_TYPE:
        raise TokenError(f"Virgil JWT: unexpected type (typ) {header['typ']!r}")
    if header["cty"] != CONTENT_TYPE:
        raise TokenError(f"Virgil JWT: unexpected content type (cty) {header['cty']!r}")
    if jwt.key_id != app_key_id:
        raise TokenError("Virgil JWT: signed with an unknown app key (kid mismatch)")
    if app_id is not None and jwt.app_id != app_id:
        raise TokenError("Virgil JWT: issued for another application (iss mismatch)")
    try:
        check_signature(jwt.signing_input, jwt.signature, app_public_key)
    except E2EEError:
        raise TokenError("Virgil JWT: signature does not verify") from None
    now = current_time(now, "Virgil JWT")
    if jwt.expires_at <= jwt.issued_at:
        raise TokenError("Virgil JWT: exp is not after iat")
    if jwt.issued_at > now + leeway:
        raise TokenExpiredError("Virgil JWT: not yet valid (iat is in the future)")
    if jwt.expires_at <= now - leeway:
        raise TokenExpiredError("Virgil JWT: token expired")
    return jwt
