"""Trust-on-first-use pinning of users' cards, and key-change detection (beyond E3Kit JS).

The first verified card seen for an identity is pinned. Later cards for that identity are judged
against the pin:

* the same card → :class:`PinUnchanged` (nothing recorded);
* a card whose ``previous_card_id`` chain reaches the pinned card → a legitimate rotation: the pin
  moves to the new card and a :class:`KeyRotatedEvent` (informational) is emitted;
* any other card (not chained from the pin, a different key, or a roll-back to an earlier pinned
  card) → a :class:`KeyChangeEvent` is emitted and :class:`KeyChangedError` raised; the pin stays
  until the application calls :meth:`PinningManager.acknowledge`.

Cards must be verified (:class:`CardVerifier`) before they are pinned; the pinning manager judges
continuity, not signatures. Limitation inherited from Virgil's design: a rotation is vouched for by
the Cards service (its signature on the new card), not by the old key, so a compromised directory
could still fake a "rotation"; compare safety numbers (:mod:`twilio_e2ee.cards.safety`) to rule
that out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from twilio_e2ee.cards.errors import KeyChangedError
from twilio_e2ee.cards.model import Card
from twilio_e2ee.cards.pin_stores import (
    JsonFilePinStore,
    MemoryPinStore,
    PinRecord,
    PinStore,
    SqlitePinStore,
)
from twilio_e2ee.cards.safety import SafetyNumber, safety_number
from twilio_e2ee.errors import CardError

__all__ = [
    "FirstUseEvent",
    "JsonFilePinStore",
    "KeyAcknowledgedEvent",
    "KeyChangeEvent",
    "KeyChangedError",
    "KeyRotatedEvent",
    "MemoryPinStore",
    "PinEvent",
    "PinRecord",
    "PinStore",
    "PinUnchanged",
    "PinningManager",
    "SafetyNumber",
    "SqlitePinStore",
    "safety_number",
]


@dataclass(frozen=True)
class PinEvent:
    """Something the pinning manager decided about an identity's card."""

    identity: str
    card: Card
    previous: Card | None = None


@dataclass(frozen=True)
class PinUnchanged(PinEvent):
    """The card is the pinned one (returned by ``check``, not emitted)."""


@dataclass(frozen=True)
class FirstUseEvent(PinEvent):
    """No card was pinned for the identity; this one now is (trust on first use)."""


@dataclass(frozen=True)
class KeyRotatedEvent(PinEvent):
    """The new card chains from the pinned one (legitimate rotation); the pin moved."""


@dataclass(frozen=True)
class KeyChangeEvent(PinEvent):
    """The card changed without a chain from the pin; the application must acknowledge it."""

    reason: str = ""


@dataclass(frozen=True)
class KeyAcknowledgedEvent(PinEvent):
    """The application accepted a changed card; the pin moved."""


def _chain_ids(card: Card) -> list[str]:
    """Ids this card claims as predecessors: attached links and each link's previous id."""
    ids: list[str] = []
    for link in card.chain():
        if link is not card:
            if link.identity != card.identity:
                break
            ids.append(link.id)
        if link.previous_card_id is not None:
            ids.append(link.previous_card_id)
    return ids


class PinningManager:
    """Trust-on-first-use pins over a :class:`PinStore` (memory by default)."""

    def __init__(
        self, store: PinStore | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store: PinStore = MemoryPinStore() if store is None else store
        self._clock = clock
        self._lock = threading.RLock()
        self._listeners: list[Callable[[PinEvent], None]] = []
        self._pending: dict[str, KeyChangeEvent] = {}

    def subscribe(self, listener: Callable[[PinEvent], None]) -> Callable[[], None]:
        """Call ``listener`` for every emitted event; returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, event: PinEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    def pinned(self, identity: str) -> Card | None:
        """The card pinned for ``identity``, if any."""
        record = self.store.get(identity)
        return None if record is None else record.card

    @property
    def pending_changes(self) -> dict[str, KeyChangeEvent]:
        """Key changes seen and not yet acknowledged, by identity (this session only)."""
        with self._lock:
            return dict(self._pending)

    def check(self, card: Card) -> PinEvent:
        """Judge a verified card against the pin of its identity (see the module docstring).

        Returns the event (PinUnchanged, FirstUseEvent or KeyRotatedEvent); raises
        KeyChangedError (after emitting a KeyChangeEvent) for an unacknowledged change.
        """
        if not isinstance(card, Card):
            raise CardError(f"expected a Card, got {type(card).__name__}")
        identity = card.identity
        with self._lock:
            record = self.store.get(identity)
            if record is None:
                self.store.put(PinRecord(identity, card, self._clock()))
                event: PinEvent = FirstUseEvent(identity, card)
            elif record.card.id == card.id:
                return PinUnchanged(identity, card, record.card)
            elif card.id in record.history:
                event = self._record_change(record, card, "roll-back to an earlier card")
            elif record.card.id in _chain_ids(card):
                history = (*record.history, record.card.id)
                self.store.put(PinRecord(identity, card, self._clock(), history))
                self._pending.pop(identity, None)
                event = KeyRotatedEvent(identity, card, record.card)
            else:
                reason = (
                    "new public key not chained from the pinned card"
                    if card.public_key != record.card.public_key
                    else "new card (same key) not chained from the pinned card"
                )
                event = self._record_change(record, card, reason)
        self._emit(event)  # listeners run outside the lock, for every kind of event
        if isinstance(event, KeyChangeEvent):
            assert event.previous is not None
            raise KeyChangedError(
                f"the card of {identity!r} changed ({event.reason}): pinned "
                f"{event.previous.id[:16]}…, now {card.id[:16]}…. Confirm the new key with the "
                "user (compare safety numbers), then call acknowledge(identity, new_card).",
                identity=identity,
                old_card=event.previous,
                new_card=card,
                reason=event.reason,
            )
        return event

    def _record_change(self, record: PinRecord, card: Card, reason: str) -> KeyChangeEvent:
        """Remember an unacknowledged change (caller holds the lock); the pin stays."""
        event = KeyChangeEvent(record.identity, card, record.card, reason=reason)
        self._pending[record.identity] = event
        return event

    def check_all(self, cards: Iterable[Card]) -> list[PinEvent]:
        """Check several cards; raises the first KeyChangedError after checking them all."""
        events: list[PinEvent] = []
        first_error: KeyChangedError | None = None
        for card in cards:
            try:
                events.append(self.check(card))
            except KeyChangedError as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return events

    def acknowledge(self, identity: str, new_card: Card) -> KeyAcknowledgedEvent:
        """Accept ``new_card`` as the card of ``identity`` (after the user confirmed it)."""
        if not isinstance(new_card, Card) or new_card.identity != identity:
            raise CardError("acknowledge: the card must be a Card of that identity")
        with self._lock:
            record = self.store.get(identity)
            history: tuple[str, ...] = ()
            previous = None
            if record is not None:
                previous = record.card
                history = record.history
                if record.card.id != new_card.id:
                    history = (*history, record.card.id)
            history = tuple(h for h in history if h != new_card.id)
            self.store.put(PinRecord(identity, new_card, self._clock(), history))
            self._pending.pop(identity, None)
        event = KeyAcknowledgedEvent(identity, new_card, previous)
        self._emit(event)
        return event

    def forget(self, identity: str) -> None:
        """Drop the pin of ``identity`` (the next card seen is trusted on first use)."""
        with self._lock:
            self.store.delete(identity)
            self._pending.pop(identity, None)
