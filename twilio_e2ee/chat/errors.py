"""Errors of the encrypting Twilio adapter (all derive from :class:`twilio_e2ee.errors.ChatError`).

Sending raises these. Receiving never raises for one bad message: a per-message failure is
reported as a :class:`~twilio_e2ee.chat.results.MessageFailure` carrying a ``reason`` code and,
where one exists, the exception below that explains it.
"""

from __future__ import annotations

from twilio_e2ee.errors import ChatError, MalformedInputError, ServiceError, ServiceUnavailableError

__all__ = [
    "AttributesError",
    "CrossConversationError",
    "DeliveryError",
    "DuplicateMessageError",
    "HardenedFormatError",
    "MessageTooLargeError",
    "NotAddressedError",
    "ReplayError",
    "SenderMismatchError",
    "TwilioServiceError",
    "TwilioUnavailableError",
    "WebhookSignatureError",
]


class MessageTooLargeError(ChatError):
    """The encrypted body (or the attributes) would exceed Twilio's limit; nothing was posted."""

    def __init__(self, message: str, *, body_chars: int, limit: int, recipients: int) -> None:
        super().__init__(message)
        self.body_chars = body_chars
        self.limit = limit
        self.recipients = recipients


class AttributesError(ChatError):
    """Message attributes are not valid JSON, collide with the adapter's key, or are too long."""


class TwilioServiceError(ChatError, ServiceError):
    """Twilio refused a request (4xx other than 429): retrying would not help."""


class DeliveryError(ChatError, ServiceUnavailableError):
    """A send did not succeed after every retry.

    ``client_message_id`` is the random id carried in the attributes; ``maybe_posted`` is True
    when the last failure was uncertain (the message may exist on Twilio: look it up by that id
    before trying again).
    """

    def __init__(
        self,
        message: str,
        *,
        client_message_id: str,
        maybe_posted: bool,
        status: int | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.client_message_id = client_message_id
        self.maybe_posted = maybe_posted


class TwilioUnavailableError(ChatError, ServiceUnavailableError):
    """A read from Twilio (list, fetch) kept failing with 429/5xx/network errors."""


class HardenedFormatError(ChatError, MalformedInputError):
    """A hardened-mode plaintext is malformed (bad header, lengths, unsorted recipients...)."""


class ReplayError(ChatError):
    """A hardened message was seen before, or its counter is replayed or too old."""


class DuplicateMessageError(ReplayError):
    """The message id was already delivered under another Twilio message."""


class CrossConversationError(ChatError):
    """A hardened message was signed for another conversation."""


class NotAddressedError(ChatError):
    """A hardened message does not list the reader's card among its signed recipients."""


class SenderMismatchError(ChatError):
    """The signed sender card does not belong to the message's author (forwarded/impersonated)."""


class WebhookSignatureError(ChatError):
    """A webhook request's X-Twilio-Signature is missing or does not verify."""
