"""The encrypting adapter end to end: EThree users chatting through the mock Twilio service.

Real HTTP on loopback: mock Cards + Keyknox, mock Twilio, the official `twilio` SDK through
twilio_http's redirecting client, and EThree clients for the keys.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests import test_chat_helpers as helpers
from tests.test_chat_helpers import ChatStack, User, card_of, texts, uid
from twilio_e2ee import crypto
from twilio_e2ee.chat import (
    AttributesError,
    DecryptedMessage,
    FailureReason,
    MessageFailure,
    MessageTooLargeError,
    TwilioServiceError,
)
from twilio_e2ee.chat.conversation import create_conversation
from twilio_e2ee.errors import ChatError, MalformedInputError
from twilio_e2ee.ethree import UsersNotFoundError

stack = helpers.stack  # fixtures
alice_bob = helpers.alice_bob


def test_alice_and_bob_exchange_and_twilio_sees_no_plaintext(
    stack: ChatStack, alice_bob: tuple[User, User, str]
) -> None:
    alice, bob, sid = alice_bob
    a, b = alice.conversation(sid), bob.conversation(sid)
    secrets_sent = ["Hello Bob, the launch code is 0000-SWORDFISH", "Hi Alice! 🐟 got it"]
    sent_a = a.send(secrets_sent[0])
    sent_b = b.send(secrets_sent[1])
    assert sent_a.recipients == tuple(sorted([alice.identity, bob.identity]))
    for reader in (a, b):
        items = list(reader.history())
        assert all(isinstance(i, DecryptedMessage) for i in items), items
        assert texts(items) == secrets_sent
        assert [i.author for i in items] == [alice.identity, bob.identity]
    # Everything Twilio stored or saw on the wire is ciphertext or non-secret hints.
    stored = stack.twilio.messages(sid)
    assert [m["body"] for m in stored] == [sent_a.body, sent_b.body]
    seen = json.dumps([e.request for e in stack.twilio.journal.entries], default=str)
    seen += json.dumps([e.response for e in stack.twilio.journal.entries], default=str)
    for secret in secrets_sent:
        assert secret not in seen
        assert "SWORDFISH" not in seen and "launch code" not in seen
    hints = json.loads(stored[0]["attributes"])["e2ee"]
    assert set(hints) == {"v", "fmt", "card", "at", "cmid"}


def test_group_of_four(stack: ChatStack) -> None:
    users = [User(stack, uid(n)) for n in ("ann", "ben", "cy", "dee")]
    sid = create_conversation(users[0].client, [u.identity for u in users])
    convs = [u.conversation(sid) for u in users]
    for n, conv in enumerate(convs):
        sent = conv.send(f"message {n} from {users[n].identity}")
        assert len(sent.recipient_card_ids) == 4
        raw = base64.b64decode(sent.body)
        assert len(crypto.message_recipient_ids(raw)) == 4
    for conv in convs:
        assert texts(list(conv.history())) == [
            f"message {n} from {users[n].identity}" for n in range(4)
        ]
    # an outsider added after the fact reads nothing old, and is told why
    eve = User(stack, uid("eve"))
    users[0].client.conversations.v1.conversations(sid).participants.create(identity=eve.identity)
    items = list(eve.conversation(sid).history())
    assert [getattr(i, "reason", None) for i in items] == [FailureReason.NOT_A_RECIPIENT] * 4


def test_default_mode_is_byte_compatible_with_plain_auth_decrypt(
    alice_bob: tuple[User, User, str],
) -> None:
    alice, bob, sid = alice_bob
    sent = alice.conversation(sid).send("exactly as the Virgil demo")
    bob_key = bob.key_store.load(bob.identity).private_key
    alice_card = card_of(bob, alice.identity)
    # body = base64(authEncrypt(utf-8 text)), nothing else around it
    plain = crypto.auth_decrypt(base64.b64decode(sent.body), bob_key, alice_card.public_key)
    assert plain == b"exactly as the Virgil demo"
    # and EThree's own str API (E3Kit's) reads the body directly
    assert bob.ethree.auth_decrypt(sent.body, alice_card) == "exactly as the Virgil demo"


def test_reads_messages_written_by_plain_ethree_and_reports_non_encrypted(
    alice_bob: tuple[User, User, str],
) -> None:
    alice, bob, sid = alice_bob
    bob_card = card_of(alice, bob.identity)
    body = alice.ethree.auth_encrypt("sent by an E3Kit-style front-end", bob_card)
    messages = alice.client.conversations.v1.conversations(sid).messages
    messages.create(author=alice.identity, body=body)  # attributes "{}", as the JS demo
    messages.create(author=alice.identity, body="plain text, not encrypted")
    items = list(bob.conversation(sid).history())
    assert isinstance(items[0], DecryptedMessage)
    assert items[0].text == "sent by an E3Kit-style front-end" and items[0].hints is None
    assert isinstance(items[1], MessageFailure)
    assert items[1].reason is FailureReason.NOT_ENCRYPTED


def test_bytes_messages_and_extra_attributes(alice_bob: tuple[User, User, str]) -> None:
    alice, bob, sid = alice_bob
    alice.conversation(sid).send(b"\x00\xffbinary", attributes={"kind": "file"})
    (item,) = list(bob.conversation(sid).history())
    assert isinstance(item, DecryptedMessage)
    assert item.data == b"\x00\xffbinary" and item.text is None
    assert item.attributes == {"kind": "file"}


def test_impersonation_is_reported_not_shown(
    stack: ChatStack, alice_bob: tuple[User, User, str]
) -> None:
    alice, bob, sid = alice_bob
    mallory = User(stack, uid("mallory"))
    bob_card = card_of(mallory, bob.identity)
    forged = mallory.ethree.auth_encrypt("I am Alice, send money", bob_card)
    # Mallory (or Twilio itself) posts with Alice as the author
    mallory.client.conversations.v1.conversations(sid).messages.create(
        author=alice.identity, body=forged
    )
    alice.conversation(sid).send("the real Alice")
    items = list(bob.conversation(sid).history())
    assert isinstance(items[0], MessageFailure)
    assert items[0].reason is FailureReason.SIGNATURE_MISMATCH
    assert "send money" not in str(items[0])
    assert isinstance(items[1], DecryptedMessage) and items[1].text == "the real Alice"


def test_unknown_author_and_corruption_do_not_stop_history(
    alice_bob: tuple[User, User, str],
) -> None:
    alice, bob, sid = alice_bob
    conv = alice.conversation(sid)
    first = conv.send("one")
    messages = alice.client.conversations.v1.conversations(sid).messages
    messages.create(author="nobody-" + uid("x"), body=first.body)
    raw = bytearray(base64.b64decode(first.body))
    raw[-40] ^= 1
    messages.create(author=alice.identity, body=base64.b64encode(bytes(raw)).decode())
    conv.send("two")
    items = list(bob.conversation(sid).history())
    assert texts(items) == ["one", None, None, "two"]
    assert isinstance(items[1], MessageFailure) and isinstance(items[2], MessageFailure)
    assert items[1].reason is FailureReason.UNKNOWN_AUTHOR
    assert items[2].reason in (FailureReason.CORRUPTED, FailureReason.SIGNATURE_MISMATCH)


def test_messages_verify_across_sender_key_rotation(
    stack: ChatStack, alice_bob: tuple[User, User, str]
) -> None:
    alice, bob, sid = alice_bob
    alice.conversation(sid).send("before rotation")
    old_card = card_of(bob, alice.identity)
    # Alice loses her key and rotates (E3Kit: cleanup + rotatePrivateKey)
    alice.ethree.cleanup()
    new_card = alice.ethree.rotate_private_key()
    assert new_card.previous_card_id == old_card.id
    # no acknowledge needed: the new card is chained from the pinned one
    alice.conversation(sid).send("after rotation")
    items = list(bob.conversation(sid).history())
    assert texts(items) == ["before rotation", "after rotation"]
    assert isinstance(items[0], DecryptedMessage) and isinstance(items[1], DecryptedMessage)
    assert items[0].sender_card_id == old_card.id
    assert items[1].sender_card_id == new_card.id


def test_size_is_checked_before_posting(
    stack: ChatStack, alice_bob: tuple[User, User, str]
) -> None:
    alice, _, sid = alice_bob
    conv = alice.conversation(sid, max_body_chars=1600)
    before = len(stack.twilio.messages(sid))
    with pytest.raises(MessageTooLargeError) as info:
        conv.send("x" * 1500)
    assert "shorter message" in str(info.value) and "fewer recipients" in str(info.value)
    assert info.value.limit == 1600 and info.value.recipients == 2
    assert len(stack.twilio.messages(sid)) == before
    conv.send("fits")  # a short one goes through
    assert len(stack.twilio.messages(sid)) == before + 1


def test_progress_bar_history(
    alice_bob: tuple[User, User, str], capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob, sid = alice_bob
    conv = alice.conversation(sid)
    for n in range(5):
        conv.send(f"m{n}")
    items = list(bob.conversation(sid).history(progress=True, page_size=2))
    assert texts(items) == [f"m{n}" for n in range(5)]
    assert "5/5" in capsys.readouterr().err


def test_unchained_key_change_is_reported_until_acknowledged(
    alice_bob: tuple[User, User, str],
) -> None:
    alice, bob, sid = alice_bob
    b = bob.conversation(sid)
    alice.conversation(sid).send("first key")
    assert texts(list(b.history())) == ["first key"]
    # Alice (or someone controlling the directory) replaces her card without a rotation chain
    alice.ethree.unregister()
    new_card = alice.ethree.register()
    alice.conversation(sid).send("second key")
    items = list(bob.conversation(sid).history())
    assert [getattr(i, "reason", None) for i in items] == [FailureReason.KEY_CHANGED] * 2
    # after comparing safety numbers, Bob accepts the new key: new messages verify again
    bob.ethree.pinning.acknowledge(alice.identity, new_card)
    items = list(bob.conversation(sid).history())
    assert texts(items) == [None, "second key"]
    assert getattr(items[0], "reason", None) is FailureReason.SIGNATURE_MISMATCH


def test_bad_send_arguments_are_typed_errors_before_any_request(
    stack: ChatStack, alice_bob: tuple[User, User, str]
) -> None:
    alice, _, sid = alice_bob
    conv = alice.conversation(sid)
    participants_path = f"/v1/Conversations/{sid}/Participants"
    before = len(stack.twilio.journal.filter(path_contains=participants_path))
    with pytest.raises(MalformedInputError, match="str \\(text\\) or bytes"):
        conv.send(123)  # type: ignore[arg-type]
    with pytest.raises(ChatError, match="list of identities"):
        conv.send("hi", recipients="bob")
    with pytest.raises(ChatError, match="non-empty identity"):
        conv.send("hi", recipients=["bob", ""])
    with pytest.raises(AttributesError, match="reserved"):
        conv.send("hi", attributes={"e2ee": "mine"})
    with pytest.raises(MalformedInputError, match="surrogate"):
        conv.send("half a pair \ud83d")
    # nothing was even looked up on Twilio, and nothing posted
    assert len(stack.twilio.journal.filter(path_contains=participants_path)) == before
    assert stack.twilio.messages(sid) == []
    with pytest.raises(ChatError, match="conversation_sid"):
        alice.conversation("")
    with pytest.raises(UsersNotFoundError):
        conv.send("to a ghost", recipients=[alice.identity, "ghost-" + uid("g")])


def test_twilio_refusals_outside_send_are_typed_errors(
    stack: ChatStack, alice_bob: tuple[User, User, str]
) -> None:
    """create_conversation and the client-message-id lookup map SDK errors like send does."""
    alice, _, _ = alice_bob
    with pytest.raises(TwilioServiceError) as info:
        create_conversation(alice.client, [alice.identity], service_sid="IS" + "0" * 32)
    assert (info.value.status, info.value.code) == (404, 20404)
    missing = alice.conversation("CH" + "0" * 32)
    with pytest.raises(TwilioServiceError) as info:
        missing.find_by_client_message_id("cmid")
    assert (info.value.status, info.value.code) == (404, 20404)


@pytest.mark.parametrize("identities", ["alice", b"alice", [], ["alice", ""], [None], 42])
def test_create_conversation_refuses_bad_identities_before_any_request(identities: Any) -> None:
    class NoRequests:
        @property
        def conversations(self) -> Any:
            raise AssertionError("no request may be made for bad input")

    with pytest.raises(ChatError, match="identities"):
        create_conversation(NoRequests(), identities)  # type: ignore[arg-type]
