"""Small shared pieces of the mock Cards + Keyknox service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_NAME_LENGTH", "Reply", "check_name"]

MAX_NAME_LENGTH = 1024


@dataclass(frozen=True)
class Reply:
    """A handler's answer: status, JSON body (None = empty body) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def check_name(value: object, what: str) -> str:
    """A non-empty string of at most MAX_NAME_LENGTH characters, no control characters."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{what}' must be a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"'{what}' longer than {MAX_NAME_LENGTH} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"'{what}' must not contain control characters")
    return value
