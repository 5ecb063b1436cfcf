"""Request bodies for the package's Starlette apps (token backend, mock services).

:func:`read_body` reads at most ``limit`` bytes (a declared ``Content-Length`` over the limit is
refused before reading); :func:`parse_json` takes only UTF-8 JSON (RFC 8259) whose strings are
text: ``"\\ud800"`` and other lone surrogate escapes are refused, since no database, hash or
signature can encode them. Each app maps the errors to its own error body.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from twilio_e2ee import json_text
from twilio_e2ee.errors import E2EEError

__all__ = [
    "BodyTooLargeError",
    "InvalidContentLengthError",
    "MalformedJsonError",
    "RequestBodyError",
    "parse_json",
    "read_body",
]


class RequestBodyError(E2EEError):
    """A request body cannot be read or parsed."""


class BodyTooLargeError(RequestBodyError):
    """The body is (or declares to be) larger than the limit."""


class InvalidContentLengthError(RequestBodyError):
    """The ``Content-Length`` header is not a decimal number."""


class MalformedJsonError(RequestBodyError):
    """The body is not UTF-8 JSON text."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (BodyTooLargeError)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise InvalidContentLengthError("invalid Content-Length")
        if int(declared) > limit:
            raise BodyTooLargeError(f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """UTF-8 JSON whose strings are all encodable text (MalformedJsonError otherwise)."""
    try:
        return json_text.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        raise MalformedJsonError("request body is not valid JSON") from None
