"""Hardened mode (opt-in, sans-I/O): a signed plaintext that binds its context.

E3Kit's authEncrypt signs only the message, so a recipient can forward it to someone else, and
anyone who can post to Twilio can replay it into another conversation or post it twice; it still
verifies as the original sender's (research/security.md §2.1–2.4). In hardened mode the plaintext
given to authEncrypt is an envelope that also carries, under the same signature:

    magic      8   b"\\x00E2EE-H" + version 0x01
    context    u16 length + ASCII   Twilio conversation SID
    sender     32  the sender's card id (raw bytes of the 64-hex id)
    n          u16 then 32 × n      recipients' card ids, sorted, unique, including the sender's
    message_id 16  random
    counter    u64 per (sender card, conversation), strictly increasing (microsecond clock based),
               below 2**63 so that every replay store (SQLite included) can keep it
    sent_at    u64 milliseconds since the epoch (display only)
    kind       u8  0 = UTF-8 text, 1 = bytes
    payload    the rest

The wire format is unchanged (base64 of authEncrypt), so Virgil's libraries still decrypt and
verify hardened messages; they just show the envelope bytes. A reader checks, before delivering:
the conversation, that the verified signer card is the envelope's sender, that its own card is a
signed recipient, and (via a :class:`ReplayWindow`) that the message id and counter are new.
"""

from __future__ import annotations

import itertools
import secrets
import sqlite3
import struct
import threading
import time
from bisect import bisect_left, insort
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from twilio_e2ee.chat.errors import (
    CrossConversationError,
    DuplicateMessageError,
    HardenedFormatError,
    NotAddressedError,
    ReplayError,
    SenderMismatchError,
)
from twilio_e2ee.errors import ChatError

__all__ = [
    "MAGIC",
    "CounterSource",
    "HardenedEnvelope",
    "MemoryReplayStore",
    "ReplayStore",
    "ReplayWindow",
    "SqliteReplayStore",
    "check_binding",
    "decode_envelope",
    "encode_envelope",
    "envelope_bytes",
    "is_hardened",
]

MAGIC = b"\x00E2EE-H\x01"
KIND_TEXT = 0
KIND_BYTES = 1
CARD_ID_LENGTH = 32
MESSAGE_ID_LENGTH = 16
MAX_RECIPIENTS = 1000  # Twilio's participant ceiling per conversation
MAX_COUNTER = 2**63 - 1  # SQLite's INTEGER; a clock-based counter reaches it in ~292,000 years
_TAIL = struct.Struct(">16sQQB")


@dataclass(frozen=True)
class HardenedEnvelope:
    """The signed content of a hardened message."""

    conversation_sid: str
    sender_card_id: str
    recipient_card_ids: tuple[str, ...]
    message_id: bytes
    counter: int
    sent_at_ms: int
    payload: bytes
    is_text: bool

    @property
    def text(self) -> str | None:
        """The payload as text when it was sent as text."""
        return self.payload.decode("utf-8") if self.is_text else None


def _card_bytes(card_id: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(card_id)
    except (ValueError, TypeError):
        raise HardenedFormatError(f"{what}: card id must be 64 hex digits") from None
    if len(raw) != CARD_ID_LENGTH or card_id != raw.hex():
        raise HardenedFormatError(f"{what}: card id must be 64 lowercase hex digits")
    return raw


def is_hardened(plaintext: bytes) -> bool:
    """True when a decrypted plaintext starts with the hardened magic."""
    return plaintext.startswith(MAGIC)


def encode_envelope(
    *,
    conversation_sid: str,
    sender_card_id: str,
    recipient_card_ids: list[str] | tuple[str, ...] | set[str],
    payload: bytes,
    is_text: bool,
    counter: int,
    message_id: bytes | None = None,
    sent_at_ms: int | None = None,
) -> HardenedEnvelope:
    """Build an envelope (recipients are sorted and deduplicated; the sender is added)."""
    if not conversation_sid or not conversation_sid.isascii() or len(conversation_sid) > 256:
        raise HardenedFormatError("conversation SID must be 1..256 ASCII characters")
    _card_bytes(sender_card_id, "sender")
    recipients = sorted({*recipient_card_ids, sender_card_id})
    for rid in recipients:
        _card_bytes(rid, "recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise HardenedFormatError(f"at most {MAX_RECIPIENTS} recipients")
    if not 0 <= counter <= MAX_COUNTER:
        raise HardenedFormatError("counter out of range")
    mid = secrets.token_bytes(MESSAGE_ID_LENGTH) if message_id is None else message_id
    if len(mid) != MESSAGE_ID_LENGTH:
        raise HardenedFormatError("message id must be 16 bytes")
    return HardenedEnvelope(
        conversation_sid=conversation_sid,
        sender_card_id=sender_card_id,
        recipient_card_ids=tuple(recipients),
        message_id=mid,
        counter=counter,
        sent_at_ms=int(time.time() * 1000) if sent_at_ms is None else sent_at_ms,
        payload=bytes(payload),
        is_text=is_text,
    )


def envelope_bytes(env: HardenedEnvelope) -> bytes:
    """Serialise an envelope (the bytes that get auth-encrypted, hence signed)."""
    ctx = env.conversation_sid.encode("ascii")
    parts = [
        MAGIC,
        struct.pack(">H", len(ctx)),
        ctx,
        _card_bytes(env.sender_card_id, "sender"),
        struct.pack(">H", len(env.recipient_card_ids)),
        *(_card_bytes(r, "recipient") for r in env.recipient_card_ids),
        _TAIL.pack(
            env.message_id,
            env.counter,
            env.sent_at_ms,
            KIND_TEXT if env.is_text else KIND_BYTES,
        ),
        env.payload,
    ]
    return b"".join(parts)


def decode_envelope(data: bytes) -> HardenedEnvelope:
    """Parse an envelope strictly (raises HardenedFormatError on any deviation)."""
    if not data.startswith(MAGIC):
        raise HardenedFormatError("not a hardened message (magic missing)")
    pos = len(MAGIC)

    def take(n: int) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(data):
            raise HardenedFormatError("hardened message is truncated")
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    (ctx_len,) = struct.unpack(">H", take(2))
    if not 1 <= ctx_len <= 256:
        raise HardenedFormatError("bad conversation SID length")
    ctx = take(ctx_len)
    if not ctx.isascii():
        raise HardenedFormatError("conversation SID is not ASCII")
    sender = take(CARD_ID_LENGTH).hex()
    (count,) = struct.unpack(">H", take(2))
    if not 1 <= count <= MAX_RECIPIENTS:
        raise HardenedFormatError("bad recipient count")
    recipients = tuple(take(CARD_ID_LENGTH).hex() for _ in range(count))
    if any(a >= b for a, b in itertools.pairwise(recipients)):
        raise HardenedFormatError("recipients are not sorted and unique")
    if sender not in recipients:
        raise HardenedFormatError("the sender's card is not among the recipients")
    message_id, counter, sent_at_ms, kind = _TAIL.unpack(take(_TAIL.size))
    if counter > MAX_COUNTER:
        raise HardenedFormatError("counter out of range")
    if kind not in (KIND_TEXT, KIND_BYTES):
        raise HardenedFormatError(f"unknown payload kind {kind}")
    payload = data[pos:]
    if kind == KIND_TEXT:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            raise HardenedFormatError("text payload is not UTF-8") from None
    return HardenedEnvelope(
        conversation_sid=ctx.decode("ascii"),
        sender_card_id=sender,
        recipient_card_ids=recipients,
        message_id=message_id,
        counter=counter,
        sent_at_ms=sent_at_ms,
        payload=payload,
        is_text=kind == KIND_TEXT,
    )


def check_binding(
    env: HardenedEnvelope,
    *,
    conversation_sid: str,
    signer_card_id: str,
    reader_card_ids: set[str] | frozenset[str],
) -> None:
    """Check the signed context against where and how the message arrived.

    `signer_card_id` is the card whose key verified the signature (one of the author's cards);
    `reader_card_ids` the reader's cards (current and previous, for multi-device/rotation).
    """
    if env.conversation_sid != conversation_sid:
        raise CrossConversationError(
            f"message was signed for conversation {env.conversation_sid}, "
            f"not {conversation_sid} (replayed from another conversation)"
        )
    if env.sender_card_id != signer_card_id:
        raise SenderMismatchError(
            "the signed sender card is not the author's card that verified the signature "
            "(forwarded or impersonated message)"
        )
    if not reader_card_ids.intersection(env.recipient_card_ids):
        raise NotAddressedError(
            "your card is not among the message's signed recipients (forwarded message)"
        )


class CounterSource:
    """Per-conversation send counters that never go backwards, even across restarts.

    A counter is ``max(last + 1, current time in microseconds)``, so a restarted sender (or a
    second device using the same card) does not reuse values without any stored state.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, conversation_sid: str) -> int:
        with self._lock:
            value = max(self._last.get(conversation_sid, 0) + 1, time.time_ns() // 1000)
            self._last[conversation_sid] = value
            return value


SHARED_COUNTERS = CounterSource()  # the default: one counter stream per process and conversation


class ReplayStore(Protocol):
    """Where a reader remembers hardened messages it accepted."""

    def check_and_record(
        self,
        *,
        conversation_sid: str,
        sender_card_id: str,
        message_id: bytes,
        counter: int,
        message_sid: str | None,
    ) -> None:
        """Raise ReplayError (or a subclass) if the message must be rejected, else remember it."""


class ReplayWindow:
    """A sliding window of accepted counters for one (conversation, sender card) stream."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._counters: list[int] = []

    def check(self, counter: int) -> None:
        pos = bisect_left(self._counters, counter)
        if pos < len(self._counters) and self._counters[pos] == counter:
            raise ReplayError("counter already used by another message (replay)")
        if len(self._counters) >= self.size and counter < self._counters[0]:
            raise ReplayError("counter is older than the replay window (replayed or too late)")

    def add(self, counter: int) -> None:
        insort(self._counters, counter)
        if len(self._counters) > self.size:
            del self._counters[0]


class MemoryReplayStore:
    """In-memory replay protection: seen message ids plus a counter window per stream.

    Re-reading the same Twilio message (same message SID) is not a replay; the same message id
    under another SID is a duplicate; a reused or too-old counter is a replay. Nothing is recorded
    for a rejected message.
    """

    def __init__(self, window: int = 2048, max_ids: int = 200_000) -> None:
        self._window = window
        self._max_ids = max_ids
        self._ids: OrderedDict[bytes, tuple[str, str, int, str | None]] = OrderedDict()
        self._streams: dict[tuple[str, str], ReplayWindow] = {}
        self._lock = threading.Lock()

    def check_and_record(
        self,
        *,
        conversation_sid: str,
        sender_card_id: str,
        message_id: bytes,
        counter: int,
        message_sid: str | None,
    ) -> None:
        record = (conversation_sid, sender_card_id, counter, message_sid)
        with self._lock:
            seen = self._ids.get(message_id)
            if seen is not None:
                if seen == record and message_sid is not None:
                    return  # the same Twilio message read again
                raise DuplicateMessageError(
                    "this message id was already delivered (duplicate or replayed message)"
                )
            key = (conversation_sid, sender_card_id)
            stream = self._streams.setdefault(key, ReplayWindow(self._window))
            stream.check(counter)
            stream.add(counter)
            self._ids[message_id] = record
            while len(self._ids) > self._max_ids:
                self._ids.popitem(last=False)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_ids (
    message_id BLOB PRIMARY KEY, conversation TEXT NOT NULL, sender TEXT NOT NULL,
    counter INTEGER NOT NULL, message_sid TEXT);
CREATE TABLE IF NOT EXISTS counters (
    conversation TEXT NOT NULL, sender TEXT NOT NULL, counter INTEGER NOT NULL,
    PRIMARY KEY (conversation, sender, counter));
"""


class SqliteReplayStore:
    """Replay protection that survives restarts (same rules as :class:`MemoryReplayStore`).

    Each check and its record happen in one transaction, so a crash never leaves a half-recorded
    message, and a rejected message records nothing.
    """

    def __init__(self, path: str | Path, window: int = 2048) -> None:
        self._window = window
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ChatError(f"cannot open the replay store {str(path)!r}: {exc}") from exc

    def check_and_record(
        self,
        *,
        conversation_sid: str,
        sender_card_id: str,
        message_id: bytes,
        counter: int,
        message_sid: str | None,
    ) -> None:
        with self._lock:
            try:
                self._check_and_record(
                    (conversation_sid, sender_card_id), message_id, counter, message_sid
                )
            except sqlite3.Error as exc:
                raise ChatError(f"the replay store failed: {exc}") from exc

    def _check_and_record(
        self, key: tuple[str, str], message_id: bytes, counter: int, message_sid: str | None
    ) -> None:
        db = self._db  # the caller holds the lock
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT conversation, sender, counter, message_sid FROM seen_ids "
                "WHERE message_id = ?",
                (message_id,),
            ).fetchone()
            if row is not None:
                if tuple(row) == (*key, counter, message_sid) and message_sid is not None:
                    db.execute("COMMIT")
                    return
                raise DuplicateMessageError(
                    "this message id was already delivered (duplicate or replayed message)"
                )
            if db.execute(
                "SELECT 1 FROM counters WHERE conversation = ? AND sender = ? AND counter = ?",
                (*key, counter),
            ).fetchone():
                raise ReplayError("counter already used by another message (replay)")
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(counter) FROM counters WHERE conversation = ? AND sender = ?",
                key,
            ).fetchone()
            if count >= self._window and counter < oldest:
                raise ReplayError("counter is older than the replay window (replayed or too late)")
            db.execute("INSERT INTO counters VALUES (?, ?, ?)", (*key, counter))
            if count + 1 > self._window:
                db.execute(
                    "DELETE FROM counters WHERE conversation = ? AND sender = ? AND counter = "
                    "(SELECT MIN(counter) FROM counters WHERE conversation = ? AND sender = ?)",
                    (*key, *key),
                )
            db.execute(
                "INSERT INTO seen_ids VALUES (?, ?, ?, ?, ?)",
                (message_id, *key, counter, message_sid),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
