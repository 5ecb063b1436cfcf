"""Twilio wire formats: SIDs, datetimes, canonical URLs, and the limits the mock enforces."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from mock_services.twilio.errors import attributes_invalid, attributes_too_long, bad_request

__all__ = [
    "CANONICAL_BASE",
    "TwilioLimits",
    "check_attributes",
    "format_datetime",
    "parse_datetime",
    "utc_now",
]

CANONICAL_BASE = "https://conversations.twilio.com"
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # exactly what twilio.base.deserialize parses
_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


@dataclass(frozen=True)
class TwilioLimits:
    """Conversations limits (twilio.com/docs/conversations-classic/conversations-limits).

    ``message_body_bytes`` is the chat limit (32 KB); SMS/WhatsApp bodies are 1,600 characters.
    """

    message_body_bytes: int = 32 * 1024
    message_attributes_bytes: int = 4 * 1024
    participant_attributes_bytes: int = 4 * 1024
    user_attributes_bytes: int = 4 * 1024
    conversation_attributes_bytes: int = 16 * 1024
    identity_chars: int = 256
    friendly_name_chars: int = 256
    participants_per_conversation: int = 1000
    max_page_size: int = 100
    default_page_size: int = 50
    actions_per_second: float | None = None  # Twilio: 30 (per conversation / per service)


def is_sid(value: str, prefix: str) -> bool:
    return value.startswith(prefix) and bool(_SID.match(value))


def utc_now() -> str:
    return format_datetime(datetime.now(UTC))


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime(DATETIME_FORMAT)


def parse_datetime(value: str, name: str) -> str:
    """An ISO 8601 parameter (``DateCreated`` …) in Twilio's output format, or a 400."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid {name}: expected an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return format_datetime(parsed)


def check_attributes(value: str, limit: int) -> str:
    """Attributes must be valid JSON and at most ``limit`` bytes (UTF-8)."""
    if len(value.encode("utf-8")) > limit:
        raise attributes_too_long(limit)
    try:
        json.loads(value)
    except ValueError:
        raise attributes_invalid() from None
    return value
