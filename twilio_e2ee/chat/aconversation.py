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
from typing import Any

from twilio.rest import Client

from twilio_e2ee.chat.codec import SealedMessage, check_outgoing
from twilio_e2ee.chat.conversation import ConversationBase, wire_from_instance
from twilio_e2ee.chat.results import ReceivedItem, SentMessage, WireMessage
from twilio_e2ee.chat.retry import send_with_retry_async
from twilio_e2ee.chat.transport import last_retry_after
from twilio_e2ee.errors import ChatError

__all__ = ["AsyncEncryptedConversation"]


class AsyncEncryptedConversation(ConversationBase):
    """An end-to-end encrypted conversation driven with ``await`` (same options as the sync one;
    ``sleep`` is awaited and defaults to ``asyncio.sleep``)."""

    @staticmethod
    def _default_sleep() -> Callable[[float], Awaitable[None]]:
        return asyncio.sleep

    def _check_client(self, client: Client) -> None:
        if not getattr(client.http_client, "is_async", False):
            raise ChatError(
                "AsyncEncryptedConversation needs an async Twilio client: "
                "twilio_rest_client(..., async_=True) created inside the running event loop"
            )

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
        return await asyncio.to_thread(self._seal, message, self._others(identities), attributes)

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
            return await messages.create_async(**self._create_args(sealed))

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
        return self._sent(sealed, report)

    async def _find_posted(self, sealed: SealedMessage) -> Any:
        messages = self.resource.messages
        size = min(self.lookup_depth, 100)
        page = await messages.page_async(order="desc", page_size=size)
        seen = 0
        while page is not None and seen < self.lookup_depth:
            for message in page:
                seen += 1
                if self._is_posted(message, sealed):
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
        return await asyncio.to_thread(self._open, wire)

    async def history(
        self, *, page_size: int = 50, limit: int | None = None, order: str = "asc"
    ) -> AsyncIterator[ReceivedItem]:
        """Every message, decrypted or reported as a typed failure (oldest first)."""
        self._cards.clear()
        async for wire in self.iter_wire(order=order, page_size=page_size, limit=limit):
            yield await self.open(wire)
