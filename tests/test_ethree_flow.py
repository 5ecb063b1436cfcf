"""EThree against the offline stack: the whole E3Kit flow, guards, multi-device, async form."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from twilio_e2ee import AsyncEThree, EThree
from twilio_e2ee.cards.errors import CardsServiceError, KeyChangedError
from twilio_e2ee.cards.model import Card
from twilio_e2ee.cards.pinning import KeyRotatedEvent
from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.errors import EThreeError, NotARecipientError, SignatureError
from twilio_e2ee.ethree import (
    BackupAlreadyExistsError,
    IdentityAlreadyExistsError,
    MissingPrivateKeyError,
    MultipleCardsError,
    PrivateKeyAlreadyExistsError,
    PrivateKeyNoBackupError,
    PythiaBackupNotSupportedError,
    RegisterInProgressError,
    RegisterRequiredError,
    UsersFoundWithMultipleCardsError,
    UsersNotFoundError,
    WrongKeyknoxPasswordError,
)
from twilio_e2ee.keyknox import MINIMUM_PARAMS, KeyknoxClient
from twilio_e2ee.storage import MemoryKeyStore
from twilio_e2ee.tokens.providers import CachingJwtProvider
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt

FAST = MINIMUM_PARAMS  # Argon2id at OWASP's floor keeps the tests fast


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def stack(offline_stack):
    return offline_stack


class Users:
    """Makes EThree clients for identities on the stack (token callbacks mint Virgil JWTs)."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.clients: list[EThree] = []

    def callback(self, identity: str):
        app = self.stack.credentials.virgil
        return lambda: generate_virgil_jwt(app, identity)

    def __call__(self, identity: str, **options) -> EThree:
        options.setdefault("backup_params", FAST)
        client = EThree(
            self.callback(identity),
            api_url=self.stack.cards_url,
            cards_service_public_key=self.stack.cards_service_public_key,
            **options,
        )
        self.clients.append(client)
        return client

    def aio(self, identity: str, **options) -> AsyncEThree:
        options.setdefault("backup_params", FAST)
        return AsyncEThree(
            self.callback(identity),
            api_url=self.stack.cards_url,
            cards_service_public_key=self.stack.cards_service_public_key,
            **options,
        )


@pytest.fixture
def users(stack):
    made = Users(stack)
    yield made
    for client in made.clients:
        client.close()


def next_second() -> None:
    """Cards carry created_at in whole seconds: start the next step in a new second."""
    time.sleep(1.05 - (time.time() % 1.0))


def test_register_find_encrypt_decrypt(users):
    alice, bob, carol = users(unique("alice")), users(unique("bob")), users(unique("carol"))
    assert not alice.has_local_private_key()
    card = alice.register()
    assert isinstance(card, Card) and card.identity == alice.identity
    assert alice.has_local_private_key()
    bob.register()
    carol.register()

    bob_card = alice.find_users(bob.identity)
    assert isinstance(bob_card, Card) and bob_card.identity == bob.identity
    group = alice.find_users([bob.identity, carol.identity, bob.identity])
    assert set(group) == {bob.identity, carol.identity}

    text = alice.auth_encrypt("hello Bob 👋", bob_card)
    assert isinstance(text, str)
    base64.b64decode(text, validate=True)  # base64 text, as E3Kit returns
    alice_card = bob.find_users(alice.identity)
    assert bob.auth_decrypt(text, alice_card) == "hello Bob 👋"
    assert alice.auth_decrypt(text) == "hello Bob 👋"  # the sender is always a recipient
    with pytest.raises(NotARecipientError, match="not encrypted for this device"):
        carol.auth_decrypt(text, alice_card)

    blob = alice.auth_encrypt(b"\x00\x01binary", group)
    assert isinstance(blob, bytes)
    assert carol.auth_decrypt(blob, carol.find_users(alice.identity)) == b"\x00\x01binary"
    assert bob.auth_decrypt(blob, alice_card) == b"\x00\x01binary"

    with pytest.raises(SignatureError, match="signature"):
        bob.auth_decrypt(text, carol.find_users(carol.identity))  # wrong sender card

    legacy = alice.encrypt("legacy form", bob_card)
    assert bob.decrypt(legacy, alice_card) == "legacy form"
    assert alice.find_cached_users(bob.identity) == bob_card


def test_find_users_errors_name_identities_and_chunk_by_50(users, stack):
    alice = users(unique("alice"))
    alice.register()
    ghosts = [unique("ghost") for _ in range(59)]
    before = len(stack.cards.journal.filter(path_contains="/card/v5/actions/search"))
    with pytest.raises(UsersNotFoundError) as info:
        alice.find_users([alice.identity, *ghosts])
    assert info.value.identities == ghosts
    searches = stack.cards.journal.filter(path_contains="/card/v5/actions/search")[before:]
    assert [len(e.request["identities"]) for e in searches] == [50, 10]


def test_rotation_old_messages_still_read_with_encrypted_at(users):
    alice, bob = users(unique("alice")), users(unique("bob"))
    old_card = alice.register()
    bob.register()
    bob_card = alice.find_users(bob.identity)
    assert bob.find_users(alice.identity).id == old_card.id  # Bob pins Alice's first card
    sent_at = datetime.now(UTC)
    old_message = alice.auth_encrypt("before rotation", bob_card)
    next_second()
    alice.cleanup()  # the key is lost…
    assert not alice.has_local_private_key()
    with pytest.raises(MissingPrivateKeyError, match="rotate_private_key"):
        alice.auth_encrypt("x")
    events = []
    bob.pinning.subscribe(events.append)
    new_card = alice.rotate_private_key()  # …so a new card supersedes the old one
    assert new_card.previous_card_id == old_card.id

    current = bob.find_users(alice.identity)
    assert current.id == new_card.id
    assert any(isinstance(e, KeyRotatedEvent) for e in events)  # pinned chain, no alarm
    assert bob.auth_decrypt(old_message, current, encrypted_at=sent_at) == "before rotation"
    assert bob.auth_decrypt(old_message, current, encrypted_at=sent_at.timestamp()) == (
        "before rotation"
    )
    with pytest.raises(SignatureError):
        bob.auth_decrypt(old_message, current)  # without encrypted_at: the new key is expected
    # A card without its chain attached (from get): the predecessor is fetched by id.
    detached = bob.cards.get_card(current.id)
    assert detached.previous_card is None and detached.previous_card_id == old_card.id
    assert bob.auth_decrypt(old_message, detached, encrypted_at=sent_at) == "before rotation"
    new_message = alice.auth_encrypt("after rotation", bob_card)
    assert bob.auth_decrypt(new_message, current) == "after rotation"


def test_register_guards(users, stack):
    alice = users(unique("alice"))
    alice.register()
    with pytest.raises(IdentityAlreadyExistsError, match="restore_private_key"):
        alice.register()
    with pytest.raises(PrivateKeyAlreadyExistsError):
        alice.rotate_private_key()  # a local key exists
    nobody = users(unique("nobody"))
    with pytest.raises(RegisterRequiredError, match="register"):
        nobody.rotate_private_key()
    with pytest.raises(RegisterRequiredError):
        nobody.unregister()

    # A second card published behind EThree's back: the identity is broken, as E3Kit says.
    twin = users(unique("twin"))
    twin.register()
    twin.cards.publish_card(generate_key_pair().private_key)
    with pytest.raises(UsersFoundWithMultipleCardsError) as info:
        alice.find_users([twin.identity])
    assert info.value.identities == [twin.identity]
    other_device = users(twin.identity)
    with pytest.raises(MultipleCardsError):
        other_device.register()
    twin.unregister()  # revokes both
    with pytest.raises(UsersNotFoundError):
        alice.find_users(twin.identity)


def test_register_cannot_run_twice_at_once(users, stack):
    slow = threading.Event()
    release = threading.Event()
    identity = unique("racer")
    app = stack.credentials.virgil
    calls = {"n": 0}

    def callback() -> str:
        calls["n"] += 1
        if calls["n"] == 2:  # the second token fetch happens inside register's first request
            slow.set()
            release.wait(10)
        return generate_virgil_jwt(app, identity, ttl=1)  # short-lived: refetched every call

    client = EThree(
        CachingJwtProvider(callback, margin=5),
        api_url=stack.cards_url,
        cards_service_public_key=stack.cards_service_public_key,
    )
    users.clients.append(client)
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            outcome["card"] = client.register()
        except Exception as exc:  # pragma: no cover - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    assert slow.wait(10)
    with pytest.raises(RegisterInProgressError, match="already running"):
        client.register()
    release.set()
    thread.join(10)
    assert isinstance(outcome.get("card"), Card), outcome
    assert len(client.cards.search_cards([identity])) == 1


def test_key_change_is_reported_until_acknowledged(users):
    alice, bob = users(unique("alice")), users(unique("bob"))
    alice.register()
    bob.register()
    first = alice.find_users(bob.identity)
    bob.unregister()
    bob2 = users(bob.identity)
    bob2.register()  # a brand-new key, not chained from the pinned card
    with pytest.raises(KeyChangedError) as info:
        alice.find_users(bob.identity)
    assert info.value.old_card.id == first.id
    alice.pinning.acknowledge(bob.identity, info.value.new_card)
    assert alice.find_users(bob.identity).id == info.value.new_card.id


def test_backup_restore_on_new_device_change_password_reset(users):
    alice, bob = users(unique("alice")), users(unique("bob"))
    alice.register()
    bob.register()
    with pytest.raises(PrivateKeyNoBackupError):
        alice.change_password("one", "two")
    alice.backup_private_key("first password")
    with pytest.raises(BackupAlreadyExistsError, match="change_password"):
        alice.backup_private_key("another")
    message = bob.auth_encrypt("for every device of Alice", bob.find_users(alice.identity))

    device2 = users(alice.identity, key_store=MemoryKeyStore())  # a new device: no local key
    assert not device2.has_local_private_key()
    with pytest.raises(WrongKeyknoxPasswordError, match="password is wrong"):
        device2.restore_private_key("wrong password")
    assert not device2.has_local_private_key()
    device2.restore_private_key("first password")
    assert device2.has_local_private_key()
    bob_card = device2.find_users(bob.identity)
    assert device2.auth_decrypt(message, bob_card) == "for every device of Alice"
    with pytest.raises(PrivateKeyAlreadyExistsError, match="cleanup"):
        device2.restore_private_key("first password")

    with pytest.raises(WrongKeyknoxPasswordError):
        alice.change_password("not it", "second password")
    alice.change_password("first password", "second password")
    device3 = users(alice.identity)
    with pytest.raises(WrongKeyknoxPasswordError):
        device3.restore_private_key("first password")
    device3.restore_private_key("second password")
    assert device3.auth_decrypt(message, bob_card) == "for every device of Alice"

    # Named backups live side by side (Keyknox v2 e3kit/backup/<name>).
    alice.backup_private_key("laptop password", key_name="laptop")
    device3.cleanup()
    device3.restore_private_key("laptop password", key_name="laptop")
    alice.reset_private_key_backup(key_name="laptop")
    alice.reset_private_key_backup()
    device4 = users(alice.identity)
    with pytest.raises(PrivateKeyNoBackupError, match="backup_private_key"):
        device4.restore_private_key("second password")
    with pytest.raises(PrivateKeyNoBackupError):
        alice.reset_private_key_backup()


def test_backup_is_ciphertext_on_the_server(users, stack):
    alice = users(unique("alice"))
    alice.register()
    alice.backup_private_key("server never sees this")
    pushes = stack.cards.journal.filter(path_contains="/keyknox/v2/push")
    mine = [e for e in pushes if e.identity == alice.identity]
    assert mine and mine[-1].request["root"] == "e3kit" and mine[-1].request["path"] == "backup"
    stored = base64.b64decode(mine[-1].request["value"])
    seed = alice.key_store.load(alice.identity).private_key.seed
    assert seed not in stored and b"server never sees this" not in stored


def test_e3kit_pythia_backup_gets_a_clear_error(users, stack, vectors):
    """A Keyknox entry in E3Kit's own format (meta = Virgil message info) is recognised."""
    alice = users(unique("alice"))
    alice.register()
    kk = KeyknoxClient(alice.tokens, stack.cards_url)
    message = base64.b64decode(vectors_message(vectors))
    kk.push(
        root="e3kit",
        path="backup",
        key="pythia",
        identities=[alice.identity],
        meta=message[:400],
        value=message[400:],
    )
    alice.cleanup()
    with pytest.raises(PythiaBackupNotSupportedError, match="Pythia backups are not supported"):
        alice.restore_private_key("whatever", key_name="pythia")
    kk.close()


def vectors_message(vectors) -> str:
    from tests.test_backup import _first_virgil_message

    return base64.b64encode(_first_virgil_message(vectors)).decode()


def test_unregister_removes_card_and_local_key(users):
    alice, bob = users(unique("alice")), users(unique("bob"))
    alice.register()
    bob.register()
    bob.find_users(alice.identity)
    alice.unregister()
    assert not alice.has_local_private_key()
    with pytest.raises(UsersNotFoundError):
        bob.find_users(alice.identity)
    alice.register()  # the identity can start over
    assert alice.has_local_private_key()


def test_async_flow(stack, users):
    async def main() -> None:
        alice = await AsyncEThree.initialize(
            users.callback(unique("alice")),
            api_url=stack.cards_url,
            cards_service_public_key=stack.cards_service_public_key,
            backup_params=FAST,
        )
        bob_id = unique("bob")

        async def bob_token() -> str:  # E3Kit's tokenCallback may be async
            await asyncio.sleep(0)
            return generate_virgil_jwt(stack.credentials.virgil, bob_id)

        bob = AsyncEThree(
            bob_token,
            api_url=stack.cards_url,
            cards_service_public_key=stack.cards_service_public_key,
        )
        with pytest.raises(EThreeError, match="initialize"):
            _ = bob.identity
        a, b = await asyncio.gather(alice.register(), bob.register())
        assert a.identity == alice.identity and b.identity == bob.identity
        carol = users.aio(unique("carol"))
        outcomes = await asyncio.gather(carol.register(), carol.register(), return_exceptions=True)
        assert sorted(type(o).__name__ for o in outcomes) == ["Card", "RegisterInProgressError"]
        await carol.aclose()
        bob_card = await alice.find_users(bob.identity)
        text = await alice.auth_encrypt("async hello", bob_card)
        assert await bob.auth_decrypt(text, await bob.find_users(alice.identity)) == "async hello"
        await alice.backup_private_key("pw-async")
        device2 = users.aio(alice.identity)
        await device2.restore_private_key("pw-async")
        assert await device2.auth_decrypt(text) == "async hello"
        await alice.change_password("pw-async", "pw2")
        await alice.reset_private_key_backup()
        await bob.unregister()
        with pytest.raises(UsersNotFoundError):
            await alice.find_users(bob.identity)
        for client in (alice, bob, device2):
            await client.aclose()

    asyncio.run(main())


class RefusingTransport(httpx.HTTPTransport):
    """The real network, except that publishing a card gets the given status."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/card/v5":
            body = {"code": 40000 if self.status < 500 else 10000, "message": "refused by test"}
            return httpx.Response(self.status, json=body)
        return super().handle_request(request)


@pytest.mark.parametrize(("status", "key_kept"), [(400, False), (503, True)])
def test_failed_publish_keeps_the_key_only_when_the_outcome_is_unknown(users, status, key_kept):
    """A refused card (4xx) leaves no orphan key; an unknown outcome (5xx) keeps it: the card
    may have been published, and its key must not be lost."""
    http = httpx.Client(transport=RefusingTransport(status))
    alice = users(unique("alice"), http_client=http)
    with pytest.raises(CardsServiceError):
        alice.register()
    assert alice.has_local_private_key() is key_kept
    assert not alice.cards.search_cards([alice.identity])
    http.close()
