"""The encrypting Twilio Conversations adapter: send, history, live receive, hardened mode.

Messages are E3Kit ``authEncrypt`` ciphertexts, base64 in the body (as Virgil's Twilio demo), so
E3Kit front-ends and this package read each other's messages. See :class:`EncryptedConversation`.
"""

from twilio_e2ee.chat.aconversation import AsyncEncryptedConversation
from twilio_e2ee.chat.attributes import MessageHints, build_attributes, parse_attributes
from twilio_e2ee.chat.codec import DEFAULT_MAX_BODY_CHARS, ChatKeys, open_message, seal_message
from twilio_e2ee.chat.conversation import EncryptedConversation, create_conversation
from twilio_e2ee.chat.errors import (
    AttributesError,
    CrossConversationError,
    DeliveryError,
    DuplicateMessageError,
    HardenedFormatError,
    MessageTooLargeError,
    NotAddressedError,
    ReplayError,
    SenderMismatchError,
    TwilioServiceError,
    TwilioUnavailableError,
    WebhookSignatureError,
)
from twilio_e2ee.chat.hardened import (
    CounterSource,
    HardenedEnvelope,
    MemoryReplayStore,
    ReplayStore,
    SqliteReplayStore,
)
from twilio_e2ee.chat.keys import EThreeKeys
from twilio_e2ee.chat.live import MessagePoller
from twilio_e2ee.chat.results import (
    DecryptedMessage,
    FailureReason,
    MessageFailure,
    ReceivedItem,
    SentMessage,
    WireMessage,
)
from twilio_e2ee.chat.retry import RetryPolicy
from twilio_e2ee.chat.webhook import WebhookReceiver

__all__ = [
    "DEFAULT_MAX_BODY_CHARS",
    "AsyncEncryptedConversation",
    "AttributesError",
    "ChatKeys",
    "CounterSource",
    "CrossConversationError",
    "DecryptedMessage",
    "DeliveryError",
    "DuplicateMessageError",
    "EThreeKeys",
    "EncryptedConversation",
    "FailureReason",
    "HardenedEnvelope",
    "HardenedFormatError",
    "MemoryReplayStore",
    "MessageFailure",
    "MessageHints",
    "MessagePoller",
    "MessageTooLargeError",
    "NotAddressedError",
    "ReceivedItem",
    "ReplayError",
    "ReplayStore",
    "RetryPolicy",
    "SenderMismatchError",
    "SentMessage",
    "SqliteReplayStore",
    "TwilioServiceError",
    "TwilioUnavailableError",
    "WebhookReceiver",
    "WebhookSignatureError",
    "WireMessage",
    "build_attributes",
    "create_conversation",
    "open_message",
    "parse_attributes",
    "seal_message",
]
