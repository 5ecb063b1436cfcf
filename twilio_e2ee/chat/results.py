"""Typed results of reading and sending messages.

Reading yields, per Twilio message, either a :class:`DecryptedMessage` or a
:class:`MessageFailure` with a :class:`FailureReason`; one bad message never stops the others.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twilio_e2ee.chat.attributes import MessageHints
from twilio_e2ee.chat.hardened import HardenedEnvelope

__all__ = [
    "DecryptedMessage",
    "FailureReason",
    "MessageFailure",
    "ReceivedItem",
    "SentMessage",
    "WireMessage",
]


@dataclass(frozen=True)
class WireMessage:
    """A message as Twilio stores it (from the REST API or a webhook): nothing decrypted yet."""

    conversation_sid: str
    sid: str
    index: int
    author: str | None
    body: str | None
    attributes: str | None
    date_created: datetime | None


class FailureReason(enum.Enum):
    """Why a message could not be shown as a verified plaintext."""

    NOT_ENCRYPTED = "not_encrypted"  # body is not a Virgil message (plaintext, empty, media)
    UNKNOWN_AUTHOR = "unknown_author"  # no author, or no card for the author
    SIGNATURE_MISMATCH = "signature_mismatch"  # author's card does not verify the signature
    NOT_A_RECIPIENT = "not_a_recipient"  # not encrypted to the reader's key
    CORRUPTED = "corrupted"  # malformed or tampered ciphertext
    NOT_HARDENED = "not_hardened"  # hardened mode requires the hardened envelope
    CROSS_CONVERSATION = "cross_conversation"  # signed for another conversation
    FORWARDED = "forwarded"  # reader not a signed recipient / signer is not the signed sender
    REPLAY = "replay"  # counter reused or too old
    DUPLICATE = "duplicate"  # message id already delivered under another Twilio message
    KEY_CHANGED = "key_changed"  # the author's key changed since it was pinned
    LOOKUP_FAILED = "lookup_failed"  # the card service could not be reached


class _FromWire:
    """The Twilio message's SID, index and author, read through ``wire``."""

    wire: WireMessage

    @property
    def sid(self) -> str:
        return self.wire.sid

    @property
    def index(self) -> int:
        return self.wire.index

    @property
    def author(self) -> str | None:
        return self.wire.author


@dataclass(frozen=True)
class DecryptedMessage(_FromWire):
    """A message that decrypted and verified under its author's card."""

    wire: WireMessage
    data: bytes
    text: str | None  # the plaintext as text when it is UTF-8 (E3Kit messages are text)
    sender_card_id: str
    hints: MessageHints | None
    attributes: dict[str, Any] = field(default_factory=dict)
    envelope: HardenedEnvelope | None = None  # set for hardened messages

    ok = True

    def __str__(self) -> str:
        shown = self.text if self.text is not None else f"<{len(self.data)} bytes>"
        return f"{self.wire.author}: {shown}"


@dataclass(frozen=True)
class MessageFailure(_FromWire):
    """A message that could not be shown as valid, and why."""

    wire: WireMessage
    reason: FailureReason
    detail: str
    error: Exception | None = None
    hints: MessageHints | None = None

    ok = False

    def __str__(self) -> str:
        return f"{self.wire.author}: [{self.reason.value}] {self.detail}"


ReceivedItem = DecryptedMessage | MessageFailure


@dataclass(frozen=True)
class SentMessage:
    """What `send` posted: the Twilio message plus what was encrypted to whom."""

    wire: WireMessage
    client_message_id: str
    recipients: tuple[str, ...]  # identities the message was encrypted to (sender included)
    recipient_card_ids: tuple[str, ...]
    hardened: bool
    attempts: int = 1
    recovered_by_lookup: bool = False

    @property
    def sid(self) -> str:
        return self.wire.sid

    @property
    def body(self) -> str:
        return self.wire.body or ""
