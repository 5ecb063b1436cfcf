"""Shared helpers of the chat tests: a stack of mocks on loopback and EThree-backed users."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from twilio.rest import Client

from twilio_e2ee.cards.model import Card
from twilio_e2ee.chat import DecryptedMessage, EncryptedConversation, RetryPolicy
from twilio_e2ee.chat.conversation import create_conversation
from twilio_e2ee.chat.keys import EThreeKeys
from twilio_e2ee.ethree import EThree
from twilio_e2ee.storage.memory import MemoryKeyStore
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt
from twilio_e2ee.twilio_http import twilio_rest_client


@dataclass
class ChatStack:
    cards_url: str
    twilio_url: str
    credentials: Any
    cards_service_public_key: Any
    twilio: Any  # MockTwilioService (journal, faults, store)
    token_for: Callable[[str], Callable[[], str]]


@pytest.fixture(scope="module")
def stack(offline_stack: Any) -> ChatStack:
    """The session's offline stack, with Virgil JWTs minted from its app credentials."""
    offline = offline_stack

    def token_for(identity: str) -> Callable[[], str]:
        return lambda: generate_virgil_jwt(offline.credentials.virgil, identity)

    return ChatStack(
        cards_url=offline.cards_url,
        twilio_url=offline.twilio_url,
        credentials=offline.credentials,
        cards_service_public_key=offline.cards_service_public_key,
        twilio=offline.twilio,
        token_for=token_for,
    )


class User:
    """One chat user: an EThree client, keys adapter and a Twilio REST client."""

    def __init__(self, stack: ChatStack, identity: str, *, register: bool = True) -> None:
        self.identity = identity
        self.stack = stack
        self.key_store = MemoryKeyStore()
        self.ethree = EThree(
            stack.token_for(identity),
            api_url=stack.cards_url,
            cards_service_public_key=stack.cards_service_public_key,
            key_store=self.key_store,
        )
        if register:
            self.ethree.register()
        tw = stack.credentials.twilio
        self.client: Client = twilio_rest_client(
            tw.account_sid, tw.auth_token, base_url=stack.twilio_url
        )

    def conversation(self, sid: str, **options: Any) -> EncryptedConversation:
        options.setdefault("retry_policy", RetryPolicy(base_delay=0.01, jitter=0.0))
        return EncryptedConversation(self.client, EThreeKeys(self.ethree), sid, **options)


_counter = iter(range(100_000))
_RUN = secrets.token_hex(3)


def uid(name: str) -> str:
    return f"{name}-{_RUN}-{next(_counter)}"


@pytest.fixture()
def alice_bob(stack: ChatStack) -> tuple[User, User, str]:
    alice, bob = User(stack, uid("alice")), User(stack, uid("bob"))
    sid = create_conversation(alice.client, [alice.identity, bob.identity])
    return alice, bob, sid


def card_of(user: User, identity: str) -> Card:
    card = user.ethree.find_users(identity)
    assert isinstance(card, Card)
    return card


def texts(items: list[Any]) -> list[str | None]:
    return [i.text if isinstance(i, DecryptedMessage) else None for i in items]
