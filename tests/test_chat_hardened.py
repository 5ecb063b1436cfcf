"""Hardened mode through the mock: forwarded, cross-conversation and duplicated messages fail.

Each attack is shown twice: default (E3Kit) mode accepts it as a valid message of the original
sender (the weakness, research/security.md §2.1–2.4), hardened mode rejects it with a reason.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from tests import test_chat_helpers as helpers
from tests.test_chat_helpers import ChatStack, User, card_of, texts, uid
from twilio_e2ee import crypto
from twilio_e2ee.chat import DecryptedMessage, FailureReason, MessageFailure
from twilio_e2ee.chat.conversation import create_conversation
from twilio_e2ee.chat.hardened import decode_envelope

stack = helpers.stack  # fixtures


def reasons(items: Sequence[object]) -> list[FailureReason | None]:
    return [i.reason if isinstance(i, MessageFailure) else None for i in items]


def test_hardened_exchange_binds_context(stack: ChatStack) -> None:
    alice, bob = User(stack, uid("alice")), User(stack, uid("bob"))
    sid = create_conversation(alice.client, [alice.identity, bob.identity])
    a = alice.conversation(sid, hardened=True)
    b = bob.conversation(sid, hardened=True)
    a.send("hardened hello")
    b.send(b"\x01\x02")
    b.send("second from bob")
    items = list(b.history())
    assert texts(items) == ["hardened hello", None, "second from bob"]
    first, second, third = items
    assert isinstance(first, DecryptedMessage) and first.envelope is not None
    assert first.envelope.conversation_sid == sid
    assert first.envelope.sender_card_id == card_of(bob, alice.identity).id
    assert set(first.envelope.recipient_card_ids) == {
        card_of(bob, alice.identity).id,
        card_of(bob, bob.identity).id,
    }
    assert isinstance(second, DecryptedMessage) and second.data == b"\x01\x02"
    assert isinstance(third, DecryptedMessage) and third.envelope is not None
    assert second.envelope is not None and third.envelope.counter > second.envelope.counter
    # reading the same history again is not a replay
    assert texts(list(b.history())) == texts(items)
    # a default-mode message is refused where hardened messages are required
    alice.conversation(sid).send("not hardened")
    assert reasons(list(b.history()))[-1] is FailureReason.NOT_HARDENED


def test_cross_conversation_replay(stack: ChatStack) -> None:
    alice, bob = User(stack, uid("alice")), User(stack, uid("bob"))
    ids = [alice.identity, bob.identity]
    conv1 = create_conversation(alice.client, ids, friendly_name="one")
    conv2 = create_conversation(alice.client, ids, friendly_name="two")
    for hardened in (False, True):
        sent = alice.conversation(conv1, hardened=hardened).send(f"pay 10 ({hardened})")
        # Twilio (or an admin key holder) copies the body into another conversation as Alice
        alice.client.conversations.v1.conversations(conv2).messages.create(
            author=alice.identity, body=sent.body, attributes=sent.wire.attributes
        )
    default_view = list(bob.conversation(conv2).history())
    hardened_view = list(bob.conversation(conv2, hardened=True).history())
    assert texts(default_view)[0] == "pay 10 (False)"  # E3Kit mode cannot tell
    assert reasons(hardened_view) == [
        FailureReason.NOT_HARDENED,
        FailureReason.CROSS_CONVERSATION,
    ]


def test_duplicate_and_replayed_messages(stack: ChatStack) -> None:
    alice, bob = User(stack, uid("alice")), User(stack, uid("bob"))
    sid = create_conversation(alice.client, [alice.identity, bob.identity])
    a = alice.conversation(sid, hardened=True)
    first = a.send("transfer 100")
    a.send("ok")
    messages = alice.client.conversations.v1.conversations(sid).messages
    messages.create(author=alice.identity, body=first.body)  # posted a second time
    items = list(bob.conversation(sid, hardened=True).history())
    assert texts(items) == ["transfer 100", "ok", None]
    assert reasons(items)[2] is FailureReason.DUPLICATE
    # a live reader that has seen the original also rejects the copy
    live = bob.conversation(sid, hardened=True)
    list(live.history())
    messages.create(author=alice.identity, body=first.body)
    assert reasons(list(live.history()))[-1] is FailureReason.DUPLICATE


def test_surreptitious_forwarding(stack: ChatStack) -> None:
    """Bob re-wraps Alice's signed plaintext for Carol (Davis 2001).

    Ed25519 is deterministic, so signing Alice's plaintext with her key yields exactly the
    signature bytes Bob finds in the footer of the message he decrypted: building the forward
    with ``auth_encrypt(plaintext, alice_key, [carol])`` is what a malicious Bob can build
    without her key.
    """
    alice, bob, carol = (User(stack, uid(n)) for n in ("alice", "bob", "carol"))
    sid = create_conversation(alice.client, [alice.identity, bob.identity])
    alice_key = alice.key_store.load(alice.identity).private_key
    carol_card = card_of(bob, carol.identity)
    bob_key = bob.key_store.load(bob.identity).private_key
    alice_card = card_of(bob, alice.identity)
    forwarded = []
    for hardened in (False, True):
        sent = alice.conversation(sid, hardened=hardened).send(f"I love you, Bob ({hardened})")
        plaintext = crypto.auth_decrypt(base64.b64decode(sent.body), bob_key, alice_card.public_key)
        if hardened:
            assert decode_envelope(plaintext).conversation_sid == sid
        forged = crypto.auth_encrypt(plaintext, alice_key, [carol_card.public_key])
        forwarded.append(base64.b64encode(forged).decode())
    # Carol joins; Bob posts the forwards as Alice in the same conversation
    context = alice.client.conversations.v1.conversations(sid)
    context.participants.create(identity=carol.identity)
    for body in forwarded:
        context.messages.create(author=alice.identity, body=body)
    default_view = list(carol.conversation(sid).history())
    hardened_view = list(carol.conversation(sid, hardened=True).history())
    assert texts(default_view)[2] == "I love you, Bob (False)"  # E3Kit mode: looks genuine
    assert reasons(hardened_view)[3] is FailureReason.FORWARDED
