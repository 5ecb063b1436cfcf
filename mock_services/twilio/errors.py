"""Twilio-shaped API errors: ``{"code", "message", "more_info", "status"}`` (legacy form).

The twilio SDK turns such a body into ``TwilioRestException(status, code, msg)``; a body with
``type`` + ``title`` (RFC 9457) would become ``TwilioServiceException`` (9.10+): never sent.
"""

from __future__ import annotations

from typing import Any

from twilio_e2ee.errors import ServiceError

__all__ = [
    "AUTHENTICATION_FAILED",
    "BAD_REQUEST",
    "TwilioApiError",
    "attributes_invalid",
    "attributes_too_long",
    "bad_request",
    "not_found",
]

# Twilio error codes used by the mock (https://www.twilio.com/docs/api/errors/<code>).
BAD_REQUEST = 20001
AUTHENTICATION_FAILED = 20003
METHOD_NOT_ALLOWED = 20004
FORBIDDEN = 20403
NOT_FOUND = 20404
TOO_MANY_REQUESTS = 20429
INTERNAL_ERROR = 20500
SERVICE_UNAVAILABLE = 20503
ATTRIBUTES_TOO_LONG = 50303
ATTRIBUTES_NOT_JSON = 50304
UNIQUE_NAME_EXISTS = 50353
PARTICIPANTS_LIMIT = 50417
PARTICIPANT_EXISTS = 50433
MESSAGE_BODY_TOO_LONG = 50504
ACTIONS_PER_SECOND = 50063
USER_EXISTS = 50201


class TwilioApiError(ServiceError):
    """An error the mock answers with, in Twilio's legacy error shape."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.message = message
        self.detail = detail
        self.headers = headers or {}

    @property
    def body(self) -> dict[str, Any]:
        assert self.code is not None and self.status is not None
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        return body


def bad_request(message: str, code: int = BAD_REQUEST) -> TwilioApiError:
    return TwilioApiError(400, code, message)


def not_found(path: str) -> TwilioApiError:
    return TwilioApiError(404, NOT_FOUND, f"The requested resource {path} was not found")


def attributes_too_long(limit: int) -> TwilioApiError:
    return TwilioApiError(
        400, ATTRIBUTES_TOO_LONG, f"Attributes too long: at most {limit} bytes are allowed"
    )


def attributes_invalid() -> TwilioApiError:
    return TwilioApiError(400, ATTRIBUTES_NOT_JSON, "Attributes must be valid JSON")
