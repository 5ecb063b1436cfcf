"""Retries when the connection drops after Twilio stored the message (a real transport error).

The mock closes the socket after the commit without answering; the official SDK raises
``requests.ConnectionError``. ``EncryptedConversation`` must treat it as uncertain, look up its
client message id and never post twice. Delays are recorded instead of slept.
"""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from tests import test_chat_helpers as helpers
from tests.test_chat_faults import MESSAGES, stored_cmids
from tests.test_chat_helpers import ChatStack, User, texts, uid
from twilio_e2ee.chat import EncryptedConversation, RetryPolicy
from twilio_e2ee.chat.conversation import create_conversation
from twilio_e2ee.chat.keys import EThreeKeys
from twilio_e2ee.chat.retry import FailureKind, classify

stack = helpers.stack  # fixtures


def test_twenty_sends_with_dropped_connections_store_each_message_once(stack: ChatStack) -> None:
    injector = stack.twilio.faults
    injector.clear(seed=4321)
    alice, bob = User(stack, uid("alice")), User(stack, uid("bob"))
    sid = create_conversation(alice.client, [alice.identity, bob.identity])
    slept: list[float] = []
    conv = EncryptedConversation(
        alice.client,
        EThreeKeys(alice.ethree),
        sid,
        retry_policy=RetryPolicy(max_attempts=30, base_delay=0.05, jitter=0.0),
        sleep=slept.append,
    )
    try:
        dropped = injector.add(
            "answer_lost", method="POST", path=MESSAGES, rate=0.3, drop_connection=True
        )
        lost_502 = injector.add("answer_lost", method="POST", path=MESSAGES, rate=0.1)
        sent = [conv.send(f"drop {n:02d}") for n in range(20)]
    finally:
        injector.clear()
    print(f"faults: dropped={dropped.hits} lost-502={lost_502.hits} sleeps={len(slept)}")
    assert dropped.hits >= 3  # the seed mixes several drops in
    assert sum(1 for s in sent if s.recovered_by_lookup) == dropped.hits + lost_502.hits
    journal = [e for e in stack.twilio.journal.entries if sid in e.path]
    assert [e.status for e in journal].count(0) == dropped.hits  # status 0: no answer at all
    cmids = stored_cmids(stack, sid)
    assert len(cmids) == 20 and Counter(cmids).most_common(1)[0][1] == 1
    assert cmids == [s.client_message_id for s in sent]
    assert texts(list(bob.conversation(sid).history())) == [f"drop {n:02d}" for n in range(20)]


def test_the_sdk_error_of_a_dropped_connection_is_uncertain(stack: ChatStack) -> None:
    injector = stack.twilio.faults
    injector.clear()
    alice = User(stack, uid("alice"))
    sid = create_conversation(alice.client, [alice.identity])
    injector.add("answer_lost", method="POST", path=MESSAGES, times=1, drop_connection=True)
    try:
        with pytest.raises(requests.ConnectionError) as info:
            alice.client.conversations.v1.conversations(sid).messages.create(body="x")
    finally:
        injector.clear()
    assert classify(info.value) is FailureKind.UNCERTAIN
    assert len(stack.twilio.messages(sid)) == 1
