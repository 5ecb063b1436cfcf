"""`AsyncEncryptedConversation`: the async twin of :class:`EncryptedConversation`.

Twilio calls use the SDK's ``*_async`` methods (build the client with
``twilio_rest_client(..., async_=True)`` inside the running loop and ``await
client.http_client.close()`` at the end). Sealing and opening are the same sans-I/O functions as
the sync class; they run in a worker thread because card lookups are blocking calls of the keys
object and the crypto is CPU work.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from twilio.base import values
from twilio.rest import Client

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
from twilio_e2ee.chat.conversation import _CardCache, wire_from_instance
from twilio_e2ee.chat.hardened import (
    SHARED_COUNTERS,
    CounterSource,
    MemoryReplayStore,
    ReplayStore,
)
from twilio_e2ee.chat.results import ReceivedItem, SentMessage, WireMessage
from twilio_e2ee.chat.retry import RetryPolicy, send_with_retry_async
from twilio_e2ee.chat.transport import install_retry_after_probe, last_retry_after
from twilio_e2ee.errors import ChatError

__all__ = ["AsyncEncryptedConversation"]


class AsyncEncryptedConversation:
    """An end-to-end encrypted conversation driven with ``await`` (same options as the sync one)."""

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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not isinstance(conversation_sid, str) or not conversation_sid:
            raise ChatError("conversation_sid must be a non-empty string (CH…)")
        if not getattr(client.http_client, "is_async", False):
            raise ChatError(
                "AsyncEncryptedConversation needs an async Twilio client: "
                "twilio_rest_client(..., async_=True) created inside the running event loop"
            )
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
        self._sleep = sleep
        self._cards = _CardCache(keys, card_cache_ttl)

    @property
    def resource(self) -> Any:
        v1 = self.client.conversations.v1
        if self.service_sid:
            return v1.services(self.service_sid).conversations(self.sid)
        return v1.conversations(self.sid)

    async def _read(self, call: Callable[[], Awaitable[Any]]) -> Any:
        async def nothing() -> None:
            return None

        report = await send_with_retry_async(
            call,
            nothing,
            client_message_id=None,
            policy=self.retry_policy,
            retry_after=last_retry_after,
            sleep=self._sleep,
        )
        return report.result

    async def _pages(self, first: Callable[[], Awaitable[Any]]) -> AsyncIterator[Any]:
        page = await self._read(first)
        while page is not None:
            for record in page:
                yield record
            page = await self._read(page.next_page_async)

    async def participant_identities(self) -> list[str]:
        """Chat identities of the current participants."""
        participants = self.resource.participants
        found = [p async for p in self._pages(lambda: participants.page_async(page_size=100))]
        return sorted({p.identity for p in found if p.identity})

    async def seal(
        self,
        message: str | bytes,
        *,
        recipients: Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> SealedMessage:
        """Encrypt without posting."""
        check_outgoing(message, recipients, attributes)
        identities = (
            sorted(set(recipients))
            if recipients is not None
            else await self.participant_identities()
        )
        others = [name for name in identities if name != self.keys.identity]

        def work() -> SealedMessage:
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

        return await asyncio.to_thread(work)

    async def send(
        self,
        message: str | bytes,
        *,
        recipients: Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> SentMessage:
        """Encrypt to every participant plus yourself and post, with duplicate-free retries."""
        sealed = await self.seal(message, recipients=recipients, attributes=attributes)
        return await self.post(sealed)

    async def post(self, sealed: SealedMessage) -> SentMessage:
        messages = self.resource.messages

        async def create() -> Any:
            return await messages.create_async(
                author=self.keys.identity,
                body=sealed.body,
                attributes=sealed.attributes,
                x_twilio_webhook_enabled="true" if self.fire_webhooks else values.unset,
            )

        async def lookup() -> Any:
            return await self._find_posted(sealed)

        report = await send_with_retry_async(
            create,
            lookup,
            client_message_id=sealed.client_message_id,
            policy=self.retry_policy,
            retry_after=last_retry_after,
            sleep=self._sleep,
        )
        return SentMessage(
            wire=wire_from_instance(self.sid, report.result),
            client_message_id=sealed.client_message_id,
            recipients=sealed.recipients,
            recipient_card_ids=sealed.recipient_card_ids,
            hardened=sealed.hardened,
            attempts=report.attempts,
            recovered_by_lookup=report.recovered_by_lookup,
        )

    async def _find_posted(self, sealed: SealedMessage) -> Any:
        messages = self.resource.messages
        size = min(self.lookup_depth, 100)
        page = await messages.page_async(order="desc", page_size=size)
        seen = 0
        while page is not None and seen < self.lookup_depth:
            for message in page:
                seen += 1
                hints, _ = parse_attributes(message.attributes)
                if (
                    hints is not None
                    and hints.client_message_id == sealed.client_message_id
                    and message.body == sealed.body
                    and message.author == self.keys.identity
                ):
                    return message
            page = await page.next_page_async() if seen < self.lookup_depth else None
        return None

    async def iter_wire(
        self, *, order: str = "asc", page_size: int = 50, limit: int | None = None
    ) -> AsyncIterator[WireMessage]:
        """The raw messages, page by page; each page read is retried."""
        messages = self.resource.messages
        count = 0
        async for message in self._pages(
            lambda: messages.page_async(order=order, page_size=page_size)
        ):
            yield wire_from_instance(self.sid, message)
            count += 1
            if limit is not None and count >= limit:
                return

    async def open(self, wire: WireMessage) -> ReceivedItem:
        """Decrypt and verify one message (in a worker thread)."""
        return await asyncio.to_thread(
            open_message,
            self.keys,
            wire,
            author_card=self._cards.get,
            hardened_required=self.hardened,
            replay_store=self.replay_store,
            grace=self.clock_grace,
        )

    async def history(
        self, *, page_size: int = 50, limit: int | None = None, order: str = "asc"
    ) -> AsyncIterator[ReceivedItem]:
        """Every message, decrypted or reported as a typed failure (oldest first)."""
        self._cards.clear()
        async for wire in self.iter_wire(order=order, page_size=page_size, limit=limit):
            yield await self.open(wire)

    def __repr__(self) -> str:
        mode = "hardened" if self.hardened else "e3kit"
        return f"<AsyncEncryptedConversation {self.sid} as {self.keys.identity} ({mode})>"
