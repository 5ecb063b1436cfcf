"""`EThreeKeys`: what the chat adapter needs, taken from an :class:`~twilio_e2ee.ethree.EThree`.

Cards come from ``EThree.find_users`` (verified against the Cards service key and pinned on first
use, so a changed key surfaces as ``KeyChangedError``); encryption and decryption are EThree's
``auth_encrypt`` / ``auth_decrypt`` on bytes, with the verifying card chosen by the adapter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from twilio_e2ee.cards.model import Card
from twilio_e2ee.errors import ChatError
from twilio_e2ee.ethree import EThree

__all__ = ["EThreeKeys"]


class EThreeKeys:
    """Adapts an :class:`EThree` to :class:`twilio_e2ee.chat.ChatKeys`.

    ``own_card_ttl``: how long the user's own card is reused before asking the service again
    (a rotation on another device is then noticed).
    """

    def __init__(self, ethree: EThree, *, own_card_ttl: float = 60.0) -> None:
        if not isinstance(ethree, EThree):
            raise ChatError(f"EThreeKeys needs an EThree client, got {type(ethree).__name__}")
        self.ethree = ethree
        self._ttl = own_card_ttl
        self._own: tuple[float, Card] | None = None
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        return self.ethree.identity

    def own_card(self) -> Card:
        with self._lock:
            cached = self._own
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        card = self.ethree.find_users(self.identity)
        assert isinstance(card, Card)
        with self._lock:
            self._own = (time.monotonic(), card)
        return card

    def forget_own_card(self) -> None:
        """Drop the cached own card (call after rotating the key on this device)."""
        with self._lock:
            self._own = None

    def own_card_ids(self) -> frozenset[str]:
        return frozenset(card.id for card in self.own_card().chain())

    def find_cards(self, identities: Sequence[str]) -> Mapping[str, Card]:
        found = self.ethree.find_users(list(identities))
        assert isinstance(found, dict)
        return found

    def encrypt(self, data: bytes, cards: Sequence[Card]) -> bytes:
        out = self.ethree.auth_encrypt(bytes(data), list(cards))
        assert isinstance(out, bytes)
        return out

    def decrypt(self, data: bytes, sender_card: Card) -> bytes:
        out = self.ethree.auth_decrypt(bytes(data), sender_card)
        assert isinstance(out, bytes)
        return out
