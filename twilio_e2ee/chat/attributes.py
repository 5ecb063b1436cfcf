"""The non-secret hints the adapter puts in a Twilio message's ``attributes`` (sans-I/O).

Twilio stores and shows attributes in the clear, so they carry only what helps a reader and what
Twilio sees anyway: the format version, the sender's card id, when the message was encrypted and a
random client message id (for duplicate-free retries). Nothing here is trusted for security: the
card that verifies a message is chosen from the author's own cards and the signature decides.

Layout (compact JSON under one key, other keys left to the application)::

    {"e2ee": {"v": 1, "fmt": "e3kit", "card": "<64 hex>", "at": "2026-01-02T03:04:05.678Z",
              "cmid": "<32 hex>"}}

E3Kit front-ends send ``"{}"``; such messages simply have no hints.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from twilio_e2ee.chat.errors import AttributesError

__all__ = [
    "ATTRIBUTES_LIMIT",
    "FORMAT_E3KIT",
    "FORMAT_HARDENED",
    "HINTS_KEY",
    "HINTS_VERSION",
    "MessageHints",
    "build_attributes",
    "new_client_message_id",
    "parse_attributes",
]

HINTS_KEY = "e2ee"
HINTS_VERSION = 1
FORMAT_E3KIT = "e3kit"  # body = base64(authEncrypt(plaintext)), as Virgil's Twilio demo
FORMAT_HARDENED = "hardened-1"  # same body format; the signed plaintext is a hardened envelope
ATTRIBUTES_LIMIT = 4096  # Twilio: message attributes are at most 4 KB of JSON

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CMID = re.compile(r"[0-9a-f]{32}")


def new_client_message_id() -> str:
    """A fresh random client message id (128 bits, 32 hex digits)."""
    return secrets.token_hex(16)


def _format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise AttributesError("encrypted_at must be timezone-aware")
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass(frozen=True)
class MessageHints:
    """What the adapter tells readers in the clear (all optional when reading)."""

    format: str = FORMAT_E3KIT
    sender_card_id: str | None = None
    encrypted_at: datetime | None = None
    client_message_id: str | None = None
    version: int = HINTS_VERSION

    def to_json_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"v": self.version, "fmt": self.format}
        if self.sender_card_id is not None:
            obj["card"] = self.sender_card_id
        if self.encrypted_at is not None:
            obj["at"] = _format_time(self.encrypted_at)
        if self.client_message_id is not None:
            obj["cmid"] = self.client_message_id
        return obj

    @classmethod
    def from_json_obj(cls, obj: object) -> MessageHints | None:
        """Read hints leniently: unknown or malformed fields are dropped, never trusted."""
        if not isinstance(obj, dict):
            return None
        version = obj.get("v")
        fmt = obj.get("fmt")
        if not isinstance(version, int) or isinstance(version, bool) or not isinstance(fmt, str):
            return None
        card = obj.get("card")
        cmid = obj.get("cmid")
        return cls(
            format=fmt[:64],
            sender_card_id=card if isinstance(card, str) and _HEX64.fullmatch(card) else None,
            encrypted_at=_parse_time(obj.get("at")),
            client_message_id=cmid if isinstance(cmid, str) and _CMID.fullmatch(cmid) else None,
            version=version,
        )


def build_attributes(hints: MessageHints, extra: Mapping[str, Any] | None = None) -> str:
    """The attributes JSON string for a message: the hints plus the application's own keys.

    Raises AttributesError when `extra` uses the adapter's key, is not JSON-serialisable, or the
    result exceeds Twilio's 4 KB limit.
    """
    obj: dict[str, Any] = {}
    if extra:
        if HINTS_KEY in extra:
            raise AttributesError(f"attributes key {HINTS_KEY!r} is reserved for the adapter")
        obj.update(extra)
    obj[HINTS_KEY] = hints.to_json_obj()
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AttributesError(f"attributes must be JSON-serialisable: {exc}") from None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise AttributesError("attributes hold a lone surrogate (not valid Unicode text)") from None
    if size > ATTRIBUTES_LIMIT:
        raise AttributesError(
            f"attributes are {size} bytes, Twilio allows {ATTRIBUTES_LIMIT}: "
            "put less application data in them"
        )
    return text


def parse_attributes(text: str | None) -> tuple[MessageHints | None, dict[str, Any]]:
    """Split a message's attributes into the adapter's hints (or None) and the other keys.

    Never raises: attributes written by other clients (or tampered by the server) just yield no
    hints.
    """
    if not text or not isinstance(text, (str, bytes, bytearray)):
        return None, {}
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None, {}
    if not isinstance(obj, dict):
        return None, {}
    hints = MessageHints.from_json_obj(obj.pop(HINTS_KEY, None))
    return hints, obj
