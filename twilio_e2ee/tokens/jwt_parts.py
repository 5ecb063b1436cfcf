"""The compact-JWT building blocks shared by Virgil JWTs and the token providers (sans-I/O).

One decoder for ``header.body.signature`` tokens: strict unpadded base64url (URL alphabet only,
canonical trailing bits) and JSON objects read as UTF-8, or as Latin-1 when they are not UTF-8
(Virgil's JS SDK writes JWT JSON as Latin-1). Everything malformed raises
:class:`MalformedTokenError`.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from typing import Any

from twilio_e2ee import json_text
from twilio_e2ee.errors import TokenError

__all__ = [
    "MAX_TOKEN_LENGTH",
    "MalformedTokenError",
    "b64url_decode",
    "b64url_encode",
    "current_time",
    "json_part",
    "split_token",
]

MAX_TOKEN_LENGTH = 64 * 1024

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class MalformedTokenError(TokenError):
    """The token is not a well-formed JWT of the expected kind (bad base64url, JSON or claims)."""


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as JWTs use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str) -> bytes:
    """Strict unpadded base64url: only the URL alphabet, canonical trailing bits."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedTokenError(f"{what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedTokenError(f"{what} is not base64url") from None
    if b64url_encode(raw) != text:
        raise MalformedTokenError(f"{what} is not canonical base64url")
    return raw


def json_part(part: str, what: str) -> dict[str, Any]:
    """A base64url JSON object (UTF-8, else Latin-1 as Virgil's JS SDK writes it)."""
    raw = b64url_decode(part, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        value = json_text.loads(text)
    except (ValueError, RecursionError):
        raise MalformedTokenError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedTokenError(f"{what} is not a JSON object")
    return value


def split_token(token: object, what: str) -> list[str]:
    """The three dot-separated parts of a compact JWT given as str (or ASCII bytes)."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedTokenError(f"{what}: not ASCII") from None
    if not isinstance(token, str):
        raise MalformedTokenError(f"{what}: expected str, got {type(token).__name__}")
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedTokenError(f"{what}: token too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedTokenError(f"{what}: expected three dot-separated parts")
    return parts


def current_time(now: object, what: str) -> float:
    """``now`` (Unix seconds, given by tests) or the clock; anything but a finite number is a
    TokenError."""
    if now is None:
        return time.time()
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise TokenError(f"{what}: now must be a finite number of Unix seconds, got {now!r}")
    return float(now)
