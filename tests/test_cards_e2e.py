"""End to end: CardsClient / AsyncCardsClient against the bundled mock Cards service on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from mock_services.cards import MockCardsService
from twilio_e2ee.cards import (
    AsyncCardsClient,
    CardsAuthenticationError,
    CardsBadRequestError,
    CardsClient,
    CardSignatureInvalidError,
    CardsNotFoundError,
    CardsServiceError,
    FirstUseEvent,
    KeyChangedError,
    KeyRotatedEvent,
    PinningManager,
    card_active_at,
    create_raw_card,
    safety_number,
)
from twilio_e2ee.credentials import StackCredentials, generate_development_credentials
from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.servers import ServerThread
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[ServerThread, MockCardsService, StackCredentials]]:
    creds = generate_development_credentials()
    app = creds.virgil
    mock = MockCardsService(app.app_id, app.app_key_id, app.app_public_key)
    server = ServerThread(mock.app, name="mock-cards").start()
    try:
        yield server, mock, creds
    finally:
        server.stop()
        mock.close()


def client_for(
    stack: tuple[ServerThread, MockCardsService, StackCredentials], identity: str
) -> CardsClient:
    server, mock, creds = stack
    return CardsClient(
        lambda: generate_virgil_jwt(creds.virgil, identity),
        base_url=server.url,
        service_public_key=mock.service_public_key,
    )


def test_register_rotate_find_pin(
    stack: tuple[ServerThread, MockCardsService, StackCredentials],
) -> None:
    with client_for(stack, "alice") as alice, client_for(stack, "bob") as bob:
        a1 = alice.publish_card(generate_key_pair().private_key)
        b1 = bob.publish_card(generate_key_pair().private_key)
        pins = PinningManager()
        (found,) = bob.search_cards("alice")
        assert found == a1 and isinstance(pins.check(found), FirstUseEvent)

        a2 = alice.publish_card(generate_key_pair().private_key, previous_card_id=a1.id)
        (head,) = bob.search_cards(["alice"])
        assert head == a2 and head.previous_card == a1 and head.previous_card.is_outdated
        assert isinstance(pins.check(head), KeyRotatedEvent)
        assert card_active_at(head, head.created_at) == a2
        assert bob.get_card(a1.id).is_outdated and not bob.get_card(a2.id).is_outdated
        assert bob.get_outdated([a1.id, a2.id, b1.id]) == [a1.id]

        # Unregister + register again: a fresh, unchained card is a key change for Bob.
        alice.revoke_card(a2.id)
        alice.revoke_card(a1.id)
        assert bob.search_cards("alice") == []
        a3 = alice.publish_card(generate_key_pair().private_key)
        (fresh,) = bob.search_cards("alice")
        with pytest.raises(KeyChangedError) as info:
            pins.check(fresh)
        assert info.value.old_card == a2 and info.value.new_card == a3
        assert safety_number(a3, b1) == safety_number(b1, fresh)


def test_mock_refusals_are_typed(
    stack: tuple[ServerThread, MockCardsService, StackCredentials],
) -> None:
    server, mock, creds = stack
    with client_for(stack, "carol") as carol:
        # Publishing a card for another identity.
        with pytest.raises(CardsServiceError) as info:
            carol.publish_raw_card(create_raw_card(generate_key_pair().private_key, "dave"))
        assert info.value.status == 403 and info.value.code is not None
        with pytest.raises(CardsNotFoundError):
            carol.get_card("ab" * 32)
        # Re-publishing the same card.
        model = create_raw_card(generate_key_pair().private_key, "carol")
        carol.publish_raw_card(model)
        with pytest.raises(CardsBadRequestError) as dup:
            carol.publish_raw_card(model)
        assert dup.value.status == 409
    # A JWT signed by another app key: refused even after the forced-reload retry.
    other = generate_development_credentials().virgil
    forged = CardsClient(
        lambda: generate_virgil_jwt(other, "carol"),
        base_url=server.url,
        service_public_key=mock.service_public_key,
    )
    with forged, pytest.raises(CardsAuthenticationError):
        forged.search_cards("carol")
    # A client trusting Virgil's production key refuses the mock's cards.
    with (
        CardsClient(lambda: generate_virgil_jwt(creds.virgil, "carol"), base_url=server.url) as c,
        pytest.raises(CardSignatureInvalidError),
    ):
        c.search_cards("carol")


def test_expired_jwt_is_retried_with_a_fresh_one(
    stack: tuple[ServerThread, MockCardsService, StackCredentials],
) -> None:
    server, mock, creds = stack
    issued: list[str] = []

    def cb() -> str:
        # The first token has expired already (issued 30 min ago, 20 min lifetime).
        now = time.time() - (1800 if not issued else 0)
        issued.append(generate_virgil_jwt(creds.virgil, "erin", now=now))
        return issued[-1]

    client = CardsClient(cb, base_url=server.url, service_public_key=mock.service_public_key)
    with client:
        assert client.search_cards("erin") == []
    assert len(issued) == 2


def test_async_client_against_mock(
    stack: tuple[ServerThread, MockCardsService, StackCredentials],
) -> None:
    server, mock, creds = stack

    async def token() -> str:
        return generate_virgil_jwt(creds.virgil, "frank")

    async def main() -> None:
        async with AsyncCardsClient(
            token, base_url=server.url, service_public_key=mock.service_public_key
        ) as client:
            first = await client.publish_card(generate_key_pair().private_key)
            second = await client.publish_card(
                generate_key_pair().private_key, previous_card_id=first.id
            )
            (head,) = await client.search_cards("frank")
            assert head == second and head.previous_card == first
            assert await client.get_outdated([first.id]) == [first.id]
            await client.revoke_card(second.id)
            assert (await client.get_card(second.id)).is_outdated

    asyncio.run(main())
    assert any(e.path.startswith("/card/v5") for e in mock.journal)
