"""Sealing and opening chat messages (sans-I/O: no Twilio, no card service calls here).

*Seal*: plaintext → (hardened envelope) → authEncrypt to every recipient card plus the sender's
→ base64 body, exactly as Virgil's Twilio demo (E3Kit ``authEncrypt`` returns base64 and the demo
posts it as the message body), plus the non-secret attribute hints; the body size is checked
against Twilio's limit before anything is posted.

*Open*: one Twilio message → a :class:`DecryptedMessage` or a :class:`MessageFailure`. The
verifying key is the author's card that was active when the message was sent (Twilio's
``date_created``, the sender's ``encrypted_at`` hint, and a small grace for clock skew: card
times have one-second resolution), never a key named by the message itself.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from twilio_e2ee.cards.errors import CardNotActiveError
from twilio_e2ee.cards.errors import KeyChangedError as CardsKeyChangedError
from twilio_e2ee.cards.model import Card, card_active_at
from twilio_e2ee.chat.attributes import (
    FORMAT_E3KIT,
    FORMAT_HARDENED,
    MessageHints,
    build_attributes,
    new_client_message_id,
    parse_attributes,
)
from twilio_e2ee.chat.errors import (
    AttributesError,
    CrossConversationError,
    DuplicateMessageError,
    HardenedFormatError,
    MessageTooLargeError,
    NotAddressedError,
    ReplayError,
    SenderMismatchError,
)
from twilio_e2ee.chat.hardened import (
    MAGIC,
    CounterSource,
    ReplayStore,
    check_binding,
    decode_envelope,
    encode_envelope,
    envelope_bytes,
    is_hardened,
)
from twilio_e2ee.chat.results import (
    DecryptedMessage,
    FailureReason,
    MessageFailure,
    ReceivedItem,
    WireMessage,
)
from twilio_e2ee.errors import (
    ChatError,
    E2EEError,
    IntegrityError,
    KeyChangedError,
    MalformedInputError,
    NotARecipientError,
    ServiceError,
    SignatureError,
)

__all__ = [
    "DEFAULT_MAX_BODY_CHARS",
    "ChatKeys",
    "SealedMessage",
    "check_outgoing",
    "open_message",
    "seal_message",
]

# Twilio's Limits page: chat message bodies up to 32 KB (the REST spec's "1,600 characters" is the
# SMS/WhatsApp limit). Configurable per conversation for SMS-bridged conversations.
DEFAULT_MAX_BODY_CHARS = 32 * 1024
CLOCK_GRACE = timedelta(seconds=5)


class ChatKeys(Protocol):
    """What the adapter needs from an E3Kit-style client (see :mod:`twilio_e2ee.chat.keys`)."""

    @property
    def identity(self) -> str:
        """The user's identity (the same string on Virgil and Twilio)."""

    def own_card(self) -> Card:
        """The user's current card (with predecessors attached)."""

    def find_cards(self, identities: Sequence[str]) -> Mapping[str, Card]:
        """Current verified cards (predecessors attached) by identity; raises if one is missing."""

    def own_card_ids(self) -> frozenset[str]:
        """Ids of the user's own cards (current and previous), for hardened recipient checks."""

    def encrypt(self, data: bytes, cards: Sequence[Card]) -> bytes:
        """authEncrypt `data`, signed with the user's key, to `cards` (the user's own included)."""

    def decrypt(self, data: bytes, sender_card: Card) -> bytes:
        """authDecrypt `data` with the user's key, verifying with exactly `sender_card`'s key."""


@dataclass(frozen=True)
class SealedMessage:
    """A message ready to post: body and attributes, plus what it was encrypted to."""

    body: str
    attributes: str
    client_message_id: str
    recipients: tuple[str, ...]
    recipient_card_ids: tuple[str, ...]
    sender_card_id: str
    hardened: bool


def payload_bytes(payload: object) -> tuple[bytes, bool]:
    """The bytes to encrypt and whether they are text (UTF-8); MalformedInputError otherwise."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload), False
    if not isinstance(payload, str):
        raise MalformedInputError(
            f"send: message must be str (text) or bytes, got {type(payload).__name__}"
        )
    try:
        return payload.encode("utf-8"), True
    except UnicodeEncodeError:
        raise MalformedInputError(
            "send: the text holds a lone surrogate (not valid Unicode); fix it or send bytes"
        ) from None


def check_outgoing(
    payload: object, recipients: object, attributes: Mapping[str, Any] | None = None
) -> None:
    """Reject bad `send` arguments before any network call (typed errors that say what to do)."""
    payload_bytes(payload)
    if attributes is not None:
        if not isinstance(attributes, Mapping):
            raise AttributesError("send: attributes must be a dict of JSON values")
        build_attributes(MessageHints(), attributes)  # reserved key, JSON, size
    if recipients is None:
        return
    if isinstance(recipients, (str, bytes)) or not isinstance(recipients, Iterable):
        raise ChatError(
            "send: recipients must be a list of identities (e.g. ['bob']), "
            f"got {type(recipients).__name__}"
        )
    bad = [r for r in recipients if not isinstance(r, str) or not r]
    if bad:
        raise ChatError(f"send: every recipient must be a non-empty identity string, got {bad!r}")


def seal_message(
    keys: ChatKeys,
    payload: str | bytes,
    *,
    conversation_sid: str,
    cards: Mapping[str, Card],
    sender_card: Card,
    hardened: bool = False,
    counters: CounterSource | None = None,
    max_body_chars: int = DEFAULT_MAX_BODY_CHARS,
    extra_attributes: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> SealedMessage:
    """Encrypt one message for `cards` (identity → current card; the sender's own is added)."""
    data, is_text = payload_bytes(payload)
    all_cards = dict(cards)
    all_cards[keys.identity] = sender_card
    ordered = [all_cards[name] for name in sorted(all_cards)]
    card_ids = tuple(card.id for card in ordered)
    moment = now or datetime.now(UTC)
    if hardened:
        if counters is None:
            raise HardenedFormatError("hardened mode needs a CounterSource")
        env = encode_envelope(
            conversation_sid=conversation_sid,
            sender_card_id=sender_card.id,
            recipient_card_ids=card_ids,
            payload=data,
            is_text=is_text,
            counter=counters.next(conversation_sid),
            sent_at_ms=int(moment.timestamp() * 1000),
        )
        plaintext = envelope_bytes(env)
    else:
        if data.startswith(MAGIC):
            raise MalformedInputError(
                "send: this payload starts with the hardened-mode marker and would be misread; "
                "use hardened mode or change the first bytes"
            )
        plaintext = data
    ciphertext = keys.encrypt(plaintext, ordered)
    body = base64.b64encode(ciphertext).decode("ascii")
    if len(body) > max_body_chars:
        raise _too_large(len(body), len(plaintext), len(ciphertext), max_body_chars, len(ordered))
    cmid = new_client_message_id()
    hints = MessageHints(
        format=FORMAT_HARDENED if hardened else FORMAT_E3KIT,
        sender_card_id=sender_card.id,
        encrypted_at=moment,
        client_message_id=cmid,
    )
    return SealedMessage(
        body=body,
        attributes=build_attributes(hints, extra_attributes),
        client_message_id=cmid,
        recipients=tuple(sorted(all_cards)),
        recipient_card_ids=card_ids,
        sender_card_id=sender_card.id,
        hardened=hardened,
    )


def _too_large(body: int, plain: int, cipher: int, limit: int, recipients: int) -> Exception:
    # The base64 body is 4/3 of the ciphertext; the ciphertext is the padded plaintext (160-byte
    # frames) plus a per-recipient and a fixed overhead, so the room left is roughly:
    overhead = max(0, cipher - plain)
    room = max(0, (limit * 3) // 4 - overhead - 160)
    return MessageTooLargeError(
        f"the encrypted message is {body} characters but Twilio accepts at most {limit}: "
        f"send a shorter message (about {room} bytes fit for {recipients} recipients), "
        "split it into several messages, or encrypt to fewer recipients",
        body_chars=body,
        limit=limit,
        recipients=recipients,
    )


def _decode_body(body: str | None) -> bytes | None:
    """The ciphertext bytes, or None when the body is not a base64 Virgil message."""
    if not body:
        return None
    try:
        raw = base64.b64decode(body.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    # Virgil messages are DER: a SEQUENCE (0x30) with a long-form length.
    if len(raw) < 16 or raw[0] != 0x30:
        return None
    return raw


def candidate_cards(
    head: Card, moments: Iterable[datetime], grace: timedelta = CLOCK_GRACE
) -> list[Card]:
    """The author's cards that may have signed a message sent at any of `moments`.

    For each moment, the card active then and the one active `grace` earlier (clock skew,
    one-second card times); a moment older than every card falls back to the oldest card if
    within `grace`. Order: most likely first, no duplicates.
    """
    out: list[Card] = []
    chain = head.chain()
    oldest = chain[-1]
    for moment in moments:
        for when in (moment, moment - grace):
            try:
                card = card_active_at(head, when)
            except CardNotActiveError:
                if when + grace >= oldest.created:
                    card = oldest
                else:
                    continue
            if card not in out:
                out.append(card)
    return out


def _fail(
    wire: WireMessage,
    reason: FailureReason,
    detail: str,
    error: Exception | None = None,
    hints: MessageHints | None = None,
) -> MessageFailure:
    return MessageFailure(wire=wire, reason=reason, detail=detail, error=error, hints=hints)


def open_message(
    keys: ChatKeys,
    wire: WireMessage,
    *,
    author_card: Callable[[str], Card],
    hardened_required: bool = False,
    replay_store: ReplayStore | None = None,
    grace: timedelta = CLOCK_GRACE,
) -> ReceivedItem:
    """Decrypt and verify one message; never raises for a bad message (returns a failure).

    `author_card(identity)` returns the author's current card with its predecessors attached
    (it may raise: card service errors become LOOKUP_FAILED / UNKNOWN_AUTHOR / KEY_CHANGED).
    """
    hints, extra = parse_attributes(wire.attributes)
    raw = _decode_body(wire.body)
    if raw is None:
        return _fail(wire, FailureReason.NOT_ENCRYPTED, "the body is not an encrypted message")
    if not wire.author:
        return _fail(wire, FailureReason.UNKNOWN_AUTHOR, "the message has no author", hints=hints)
    try:
        head = author_card(wire.author)
    except (KeyChangedError, CardsKeyChangedError) as exc:
        return _fail(wire, FailureReason.KEY_CHANGED, str(exc), exc, hints)
    except ServiceError as exc:
        return _fail(wire, FailureReason.LOOKUP_FAILED, str(exc), exc, hints)
    except E2EEError as exc:
        detail = f"no usable card for {wire.author}: {exc}"
        return _fail(wire, FailureReason.UNKNOWN_AUTHOR, detail, exc, hints)
    moments: list[datetime] = []
    if wire.date_created is not None:
        moments.append(wire.date_created)
    if hints is not None and hints.encrypted_at is not None:
        hint = hints.encrypted_at
        # A sender's hint may only move the moment back in time (posting follows encrypting).
        if wire.date_created is None or hint <= wire.date_created + grace:
            moments.append(hint)
    if not moments:
        moments.append(datetime.now(UTC))
    candidates = candidate_cards(head, moments, grace)
    if not candidates:
        return _fail(
            wire,
            FailureReason.UNKNOWN_AUTHOR,
            f"no card of {wire.author} was active when the message was sent",
            hints=hints,
        )
    plaintext: bytes | None = None
    signer: Card | None = None
    last_error: Exception | None = None
    for card in candidates:
        try:
            plaintext = keys.decrypt(raw, card)
        except SignatureError as exc:
            last_error = exc
            continue
        except NotARecipientError as exc:
            return _fail(
                wire, FailureReason.NOT_A_RECIPIENT, "not encrypted to your key", exc, hints
            )
        except (IntegrityError, MalformedInputError) as exc:
            return _fail(wire, FailureReason.CORRUPTED, f"corrupted message: {exc}", exc, hints)
        except E2EEError as exc:
            return _fail(wire, FailureReason.CORRUPTED, f"cannot decrypt: {exc}", exc, hints)
        signer = card
        break
    if plaintext is None or signer is None:
        return _fail(
            wire,
            FailureReason.SIGNATURE_MISMATCH,
            f"the signature does not verify under {wire.author}'s card "
            "(not written by the author shown)",
            last_error,
            hints,
        )
    envelope = None
    data = plaintext
    if is_hardened(plaintext):
        try:
            envelope = decode_envelope(plaintext)
            check_binding(
                envelope,
                conversation_sid=wire.conversation_sid,
                signer_card_id=signer.id,
                reader_card_ids=keys.own_card_ids(),
            )
            if replay_store is not None:
                replay_store.check_and_record(
                    conversation_sid=wire.conversation_sid,
                    sender_card_id=envelope.sender_card_id,
                    message_id=envelope.message_id,
                    counter=envelope.counter,
                    message_sid=wire.sid,
                )
        except HardenedFormatError as exc:
            return _fail(wire, FailureReason.CORRUPTED, str(exc), exc, hints)
        except CrossConversationError as exc:
            return _fail(wire, FailureReason.CROSS_CONVERSATION, str(exc), exc, hints)
        except (NotAddressedError, SenderMismatchError) as exc:
            return _fail(wire, FailureReason.FORWARDED, str(exc), exc, hints)
        except DuplicateMessageError as exc:
            return _fail(wire, FailureReason.DUPLICATE, str(exc), exc, hints)
        except ReplayError as exc:
            return _fail(wire, FailureReason.REPLAY, str(exc), exc, hints)
        data = envelope.payload
        text = envelope.text
    else:
        if hardened_required:
            return _fail(
                wire,
                FailureReason.NOT_HARDENED,
                "hardened mode requires hardened messages; this one carries no signed context",
                hints=hints,
            )
        try:
            text = plaintext.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    return DecryptedMessage(
        wire=wire,
        data=data,
        text=text,
        sender_card_id=signer.id,
        hints=hints,
        attributes=extra,
        envelope=envelope,
    )
