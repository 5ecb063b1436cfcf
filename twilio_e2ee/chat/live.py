"""Live receiving by polling: a cursor over message indexes, as an iterator and async iterator.

Python has no Twilio real-time channel (the JS/iOS/Android SDKs use a private websocket), so the
poller lists the newest messages (``Order=desc``) until it reaches its cursor, then delivers the
new ones oldest first. It works the same against real Twilio and the mock. For push delivery
from real Twilio see :mod:`twilio_e2ee.chat.webhook`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Literal

from twilio_e2ee.chat.results import ReceivedItem, WireMessage
from twilio_e2ee.chat.retry import FailureKind, classify
from twilio_e2ee.chat.transport import last_retry_after
from twilio_e2ee.errors import ServiceUnavailableError

if TYPE_CHECKING:
    from twilio_e2ee.chat.conversation import EncryptedConversation

__all__ = ["MessagePoller"]


class MessagePoller:
    """Deliver new messages of one conversation, decrypted, in index order, each exactly once.

    Args:
        conversation: the :class:`EncryptedConversation` to watch.
        start: ``"now"`` (only messages after the newest existing one), ``"beginning"`` (all),
            or an int cursor (deliver messages with a greater index).
        interval: seconds between polls when nothing is new (Twilio: be gentle, 1–2 s).
        page_size: messages per page when catching up.
        max_backoff: ceiling of the wait after errors (429 waits what Twilio asks).
    """

    def __init__(
        self,
        conversation: EncryptedConversation,
        *,
        start: Literal["now", "beginning"] | int = "now",
        interval: float = 1.0,
        page_size: int = 50,
        max_backoff: float = 30.0,
    ) -> None:
        self.conversation = conversation
        self.interval = interval
        self.page_size = page_size
        self.max_backoff = max_backoff
        self._start = start
        self._cursor: int | None = start if isinstance(start, int) else None
        self._stop = threading.Event()
        self.errors = 0

    @property
    def cursor(self) -> int | None:
        """Index of the last delivered (or skipped-at-start) message; None before the first poll."""
        return self._cursor

    def _init_cursor(self) -> None:
        if self._cursor is not None:
            return
        if self._start == "beginning":
            self._cursor = -1
            return
        newest = next(iter(self.conversation.iter_wire(order="desc", page_size=1, limit=1)), None)
        self._cursor = newest.index if newest is not None else -1

    def poll_new(self) -> list[WireMessage]:
        """Fetch the messages after the cursor (oldest first) and advance the cursor."""
        self._init_cursor()
        assert self._cursor is not None
        fresh: list[WireMessage] = []
        for wire in self.conversation.iter_wire(order="desc", page_size=self.page_size):
            if wire.index <= self._cursor:
                break
            fresh.append(wire)
        fresh.reverse()
        if fresh:
            self._cursor = fresh[-1].index
        return fresh

    def poll_once(self) -> list[ReceivedItem]:
        """One poll: the new messages, decrypted or reported as failures."""
        return [self.conversation.open(wire) for wire in self.poll_new()]

    def stop(self) -> None:
        """Make the iterators end after their current wait."""
        self._stop.set()

    def _poll_in_thread(self) -> tuple[list[ReceivedItem], BaseException | None, float | None]:
        """poll_once for a worker thread: the error and its Retry-After travel back with it."""
        try:
            return self.poll_once(), None, None
        except Exception as exc:
            return [], exc, last_retry_after()

    def _error_delay(
        self, exc: BaseException, streak: int, retry_after: float | None = None
    ) -> float:
        # Reads that ran out of retries (TwilioUnavailableError) are transient for a poller too.
        if not isinstance(exc, ServiceUnavailableError) and classify(exc) is FailureKind.FATAL:
            raise exc
        hint = last_retry_after() if retry_after is None else retry_after
        if hint is not None:
            return min(hint, self.max_backoff)
        backoff: float = self.interval * 2.0 ** min(streak, 10)
        return min(self.max_backoff, backoff)

    def iterate(self, *, timeout: float | None = None) -> Iterator[ReceivedItem]:
        """Yield messages as they arrive; ends on :meth:`stop` or after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        streak = 0
        while not self._stop.is_set():
            try:
                items = self.poll_once()
                streak = 0
            except Exception as exc:
                self.errors += 1
                streak += 1
                wait = self._error_delay(exc, streak)
            else:
                yield from items
                wait = 0.0 if items else self.interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = min(wait, left)
            if wait > 0 and self._stop.wait(wait):
                return

    def __iter__(self) -> Iterator[ReceivedItem]:
        return self.iterate()

    async def aiterate(self, *, timeout: float | None = None) -> AsyncIterator[ReceivedItem]:
        """The async form: polls in a worker thread, waits with ``asyncio.sleep``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        streak = 0
        while not self._stop.is_set():
            items, error, retry_after = await asyncio.to_thread(self._poll_in_thread)
            if error is not None:
                self.errors += 1
                streak += 1
                wait = self._error_delay(error, streak, retry_after)
            else:
                streak = 0
                for item in items:
                    yield item
                wait = 0.0 if items else self.interval
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    return
                wait = min(wait, left)
            if wait > 0:
                await asyncio.sleep(wait)

    def __aiter__(self) -> AsyncIterator[ReceivedItem]:
        return self.aiterate()
