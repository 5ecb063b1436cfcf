"""`EncryptedConversation`: end-to-end encrypted messages over the official `twilio` SDK.

The guide's Step 3: encrypt before sending through Twilio, decrypt after receiving. The Twilio
client is an ordinary ``twilio.rest.Client``; :func:`twilio_e2ee.twilio_http.twilio_rest_client`
builds one for real Twilio or for the mock, so choosing the mock is configuration, never another
code path here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Self

from twilio.base import values
from twilio.rest import Client

from twilio_e2ee.cards.model import Card
from twilio_e2ee.chat.attributes import parse_attributes
from twilio_e2ee.chat.codec import (
    CLOCK_GRACE,
    DEFAULT_MAX_BODY_CHARS,
    ChatKeys,
    SealedMessage,
    check_outgoing,
    open_message,
    seal_message,
)
from twilio_e2ee.chat.hardened import (
    SHARED_COUNTERS,
    CounterSource,
    MemoryReplayStore,
    ReplayStore,
)
from twilio_e2ee.chat.results import ReceivedItem, SentMessage, WireMessage
from twilio_e2ee.chat.retry import RetryPolicy, RetryReport, call_once, send_with_retry
from twilio_e2ee.chat.transport import install_retry_after_probe, last_retry_after
from twilio_e2ee.errors import ChatError

__all__ = ["EncryptedConversation", "create_conversation", "wire_from_instance"]


def _as_aware(moment: Any) -> datetime | None:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None


def wire_from_instance(conversation_sid: str, message: Any) -> WireMessage:
    """A :class:`WireMessage` from the SDK's ``MessageInstance``."""
    index = message.index
    return WireMessage(
        conversation_sid=getattr(message, "conversation_sid", None) or conversation_sid,
        sid=str(message.sid),
        index=int(index) if index is not None else -1,
        author=message.author,
        body=message.body,
        attributes=message.attributes,
        date_created=_as_aware(message.date_created),
    )


def create_conversation(
    client: Client,
    identities: Sequence[str],
    *,
    friendly_name: str | None = None,
    service_sid: str | None = None,
) -> str:
    """Create a conversation with these chat participants; returns its ``CH…`` SID.

    `identities` is a list of identities (a plain string is refused: it would add one
    participant per character).
    """
    if isinstance(identities, (str, bytes)) or not isinstance(identities, Sequence):
        raise ChatError(
            "create_conversation: pass the participants as a list of identities, "
            f"e.g. ['alice', 'bob'], not {type(identities).__name__}"
        )
    if not identities or not all(isinstance(i, str) and i.strip() for i in identities):
        raise ChatError("create_conversation: identities must be non-empty strings")
    v1 = client.conversations.v1
    conversations = v1.services(service_sid).conversations if service_sid else v1.conversations
    name = friendly_name or "encrypted chat"
    conversation = call_once(lambda: conversations.create(friendly_name=name))
    participants = conversations(conversation.sid).participants
    for identity in dict.fromkeys(identities):
        call_once(partial(participants.create, identity=identity))
    return str(conversation.sid)


class _CardCache:
    """Author cards for a while (a history run asks for the same few authors many times)."""

    def __init__(self, keys: ChatKeys, ttl: float) -> None:
        self._keys = keys
        self._ttl = ttl
        self._cards: dict[str, tuple[float, Card]] = {}
        self._lock = threading.Lock()

    def get(self, identity: str) -> Card:
        now = time.monotonic()
        with self._lock:
            hit = self._cards.get(identity)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        card = self._keys.find_cards([identity])[identity]
        with self._lock:
            self._cards[identity] = (now, card)
        return card

    def clear(self) -> None:
        with self._lock:
            self._cards.clear()


class ConversationBase:
    """What :class:`EncryptedConversation` and its async twin share: options and sans-I/O steps.

    Subclasses make the Twilio calls (plain or awaited) and nothing else.
    """

    def __init__(
        self,
        client: Client,
        keys: ChatKeys,
        conversation_sid: str,
        *,
        service_sid: str | None = None,
        hardened: bool = False,
        replay_store: ReplayStore | None = None,
        counters: CounterSource | None = None,
        max_body_chars: int = DEFAULT_MAX_BODY_CHARS,
        retry_policy: RetryPolicy | None = None,
        lookup_depth: int = 100,
        card_cache_ttl: float = 60.0,
        clock_grace: timedelta = CLOCK_GRACE,
        fire_webhooks: bool = True,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        if not isinstance(conversation_sid, str) or not conversation_sid:
            raise ChatError("conversation_sid must be a non-empty string (CH…)")
        self._check_client(client)
        install_retry_after_probe(client)
        self.client = client
        self.keys = keys
        self.sid = conversation_sid
        self.service_sid = service_sid
        self.hardened = hardened
        self.replay_store: ReplayStore = replay_store or MemoryReplayStore()
        self.counters = counters or SHARED_COUNTERS
        self.max_body_chars = max_body_chars
        self.retry_policy = retry_policy or RetryPolicy()
        self.lookup_depth = lookup_depth
        self.clock_grace = clock_grace
        self.fire_webhooks = fire_webhooks
        self._sleep = sleep if sleep is not None else self._default_sleep()
        self._cards = _CardCache(keys, card_cache_ttl)

    @staticmethod
    def _default_sleep() -> Callable[[float], Any]:
        return time.sleep

    def _check_client(self, client: Client) -> None:
        """Refuse a client this class cannot drive (the async class needs an async one)."""

    @classmethod
    def from_ethree(
        cls, client: Client, ethree: Any, conversation_sid: str, **options: Any
    ) -> Self:
        """The usual way in: an :class:`~twilio_e2ee.ethree.EThree` client supplies the keys."""
        from twilio_e2ee.chat.keys import EThreeKeys

        return cls(client, EThreeKeys(ethree), conversation_sid, **options)

    @property
    def resource(self) -> Any:
        """The SDK's ``ConversationContext`` for this conversation."""
        v1 = self.client.conversations.v1
        if self.service_sid:
            return v1.services(self.service_sid).conversations(self.sid)
        return v1.conversations(self.sid)

    # --- sans-I/O steps --------------------------------------------------------------------

    def _others(self, identities: Sequence[str]) -> list[str]:
        return [name for name in identities if name != self.keys.identity]

    def _seal(
        self, message: str | bytes, others: Sequence[str], attributes: Mapping[str, Any] | None
    ) -> SealedMessage:
        """Look the recipients' cards up (a blocking call of the keys) and encrypt."""
        cards = dict(self.keys.find_cards(others)) if others else {}
        return seal_message(
            self.keys,
            message,
            conversation_sid=self.sid,
            cards=cards,
            sender_card=self.keys.own_card(),
            hardened=self.hardened,
            counters=self.counters,
            max_body_chars=self.max_body_chars,
            extra_attributes=attributes,
        )

    def _create_args(self, sealed: SealedMessage) -> dict[str, Any]:
        """The SDK's ``messages.create`` arguments for a sealed message."""
        return {
            "author": self.keys.identity,
            "body": sealed.body,
            "attributes": sealed.attributes,
            "x_twilio_webhook_enabled": "true" if self.fire_webhooks else values.unset,
        }

    def _is_posted(self, message: Any, sealed: SealedMessage) -> bool:
        """True when a stored message is this sealed one (client message id, body, author)."""
        hints, _ = parse_attributes(message.attributes)
        return (
            hints is not None
            and hints.client_message_id == sealed.client_message_id
            and message.body == sealed.body
            and message.author == self.keys.identity
        )

    def _sent(self, sealed: SealedMessage, report: RetryReport[Any]) -> SentMessage:
        return SentMessage(
            wire=wire_from_instance(self.sid, report.result),
            client_message_id=sealed.client_message_id,
            recipients=sealed.recipients,
            recipient_card_ids=sealed.recipient_card_ids,
            hardened=sealed.hardened,
            attempts=report.attempts,
            recovered_by_lookup=report.recovered_by_lookup,
        )

    def _open(self, wire: WireMessage) -> ReceivedItem:
        return open_message(
            self.keys,
            wire,
            author_card=self._cards.get,
            hardened_required=self.hardened,
            replay_store=self.replay_store,
            grace=self.clock_grace,
        )

    def __repr__(self) -> str:
        mode = "hardened" if self.hardened else "e3kit"
        return f"<{type(self).__name__} {self.sid} as {self.keys.identity} ({mode})>"


class EncryptedConversation(ConversationBase):
    """One Twilio conversation whose messages are end-to-end encrypted (E3Kit-compatible).

    Args:
        client: a ``twilio.rest.Client`` (see :func:`twilio_e2ee.twilio_http.twilio_rest_client`).
        keys: the user's E3Kit-style client, adapted with :class:`twilio_e2ee.chat.EThreeKeys`.
        conversation_sid: the ``CH…`` SID.
        service_sid: use service-scoped URLs (``/v1/Services/IS…/Conversations/…``) when given.
        hardened: write hardened messages and accept only hardened ones (see
            :mod:`twilio_e2ee.chat.hardened`); the default mode is byte-compatible with E3Kit.
        max_body_chars: Twilio's body limit to check before posting (32 KB for chat).
        retry_policy: backoff for 429/5xx/lost answers; ``sleep`` is injectable for tests.
        lookup_depth: how many recent messages to search for a client message id after an
            uncertain failure.
        fire_webhooks: send ``X-Twilio-Webhook-Enabled: true`` so REST-posted messages trigger
            ``onMessageAdded`` webhooks (Twilio fires them for REST actions only on request).
        replay_store: hardened-mode memory of accepted messages (default: in memory, per object);
            share one (or a :class:`~twilio_e2ee.chat.SqliteReplayStore`) between the history
            reader, poller and webhook of a user, and read hardened history oldest first.

    The client's ``http_client`` is wrapped once in a pass-through that reads ``Retry-After``.
    """

    # --- Twilio resources ------------------------------------------------------------------

    def _read(self, call: Callable[[], Any]) -> Any:
        """A read with the same retry policy (reads are idempotent: no lookup needed)."""
        report = send_with_retry(
            call,
            lambda: None,
            client_message_id=None,
            policy=self.retry_policy,
            retry_after=last_retry_after,
            sleep=self._sleep,
        )
        return report.result

    def participant_identities(self) -> list[str]:
        """Chat identities of the current participants (SMS/WhatsApp ones have none)."""
        parts = self._read(lambda: list(self.resource.participants.stream(page_size=100)))
        return sorted({p.identity for p in parts if p.identity})

    # --- sending ---------------------------------------------------------------------------

    def seal(
        self,
        message: str | bytes,
        *,
        recipients: Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> SealedMessage:
        """Encrypt without posting (what `send` posts)."""
        check_outgoing(message, recipients, attributes)
        identities = (
            sorted(set(recipients)) if recipients is not None else self.participant_identities()
        )
        return self._seal(message, self._others(identities), attributes)

    def send(
        self,
        message: str | bytes,
        *,
        recipients: Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> SentMessage:
        """Encrypt `message` to every participant's current card plus the sender's, and post it.

        Retries 429/5xx/lost answers without posting twice (see :mod:`twilio_e2ee.chat.retry`).
        Raises MessageTooLargeError before posting when the body would exceed Twilio's limit,
        DeliveryError when retries ran out, TwilioServiceError when Twilio refused for good.
        """
        sealed = self.seal(message, recipients=recipients, attributes=attributes)
        return self.post(sealed)

    def post(self, sealed: SealedMessage) -> SentMessage:
        """Post a sealed message with retries (no duplicates: see module docs)."""
        messages = self.resource.messages

        def create() -> Any:
            return messages.create(**self._create_args(sealed))

        def lookup() -> Any:
            return self._find_posted(sealed)

        report = send_with_retry(
            create,
            lookup,
            client_message_id=sealed.client_message_id,
            policy=self.retry_policy,
            retry_after=last_retry_after,
            sleep=self._sleep,
        )
        return self._sent(sealed, report)

    def _recent(self) -> Iterator[Any]:
        """The newest ``lookup_depth`` messages, newest first (fetched lazily, page by page)."""
        return iter(
            self.resource.messages.stream(
                order="desc", limit=self.lookup_depth, page_size=min(self.lookup_depth, 100)
            )
        )

    def _find_posted(self, sealed: SealedMessage) -> Any:
        """The message already stored with this client message id and body, if any."""
        return next((m for m in self._recent() if self._is_posted(m, sealed)), None)

    def find_by_client_message_id(self, client_message_id: str) -> WireMessage | None:
        """Look a message up among the recent ones by the client message id in its attributes."""
        for message in self._read(lambda: list(self._recent())):
            hints, _ = parse_attributes(message.attributes)
            if hints is not None and hints.client_message_id == client_message_id:
                return wire_from_instance(self.sid, message)
        return None

    # --- receiving -------------------------------------------------------------------------

    def open(self, wire: WireMessage) -> ReceivedItem:
        """Decrypt and verify one message (a failure item, never an exception, when bad)."""
        return self._open(wire)

    def iter_wire(
        self, *, order: str = "asc", page_size: int = 50, limit: int | None = None
    ) -> Iterator[WireMessage]:
        """The raw messages, page by page (what Twilio stores); each page read is retried."""
        messages = self.resource.messages
        page = self._read(lambda: messages.page(order=order, page_size=page_size))
        count = 0
        while page is not None:
            for message in page:
                yield wire_from_instance(self.sid, message)
                count += 1
                if limit is not None and count >= limit:
                    return
            page = self._read(page.next_page)

    def history(
        self,
        *,
        page_size: int = 50,
        limit: int | None = None,
        order: str = "asc",
        progress: bool = False,
    ) -> Iterator[ReceivedItem]:
        """Every message, oldest first, each decrypted or reported as a typed failure.

        Each message is verified with the author's card active when it was sent, so messages
        from before a key rotation still verify. `progress=True` shows a tqdm bar (notebook-aware).
        """
        self._cards.clear()
        items = self.iter_wire(order=order, page_size=page_size, limit=limit)
        if not progress:
            for wire in items:
                yield self.open(wire)
            return
        from tqdm.auto import tqdm

        total = self._approximate_count()
        if limit is not None and total is not None:
            total = min(total, limit)
        with tqdm(total=total, desc=f"history {self.sid[:10]}…", unit="msg") as bar:
            for wire in items:
                yield self.open(wire)
                bar.update(1)

    def _approximate_count(self) -> int | None:
        newest = next(iter(self.iter_wire(order="desc", page_size=1, limit=1)), None)
        return newest.index + 1 if newest is not None else 0

    def poller(self, **kwargs: Any) -> Any:
        """A live :class:`~twilio_e2ee.chat.live.MessagePoller` on this conversation."""
        from twilio_e2ee.chat.live import MessagePoller

        return MessagePoller(self, **kwargs)
