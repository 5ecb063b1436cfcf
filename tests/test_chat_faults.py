"""Reliability through the mock's fault injection: 429, 5xx and lost answers.

Delays are recorded instead of slept (the policy is what is under test, not the clock), so the
runs take seconds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from tests import test_chat_helpers as helpers
from tests.test_chat_helpers import ChatStack, User, texts, uid
from twilio_e2ee.chat import DeliveryError, EncryptedConversation, RetryPolicy
from twilio_e2ee.chat.conversation import create_conversation
from twilio_e2ee.chat.keys import EThreeKeys

stack = helpers.stack  # fixtures

MESSAGES = "/v1/Conversations/*/Messages"


@pytest.fixture()
def faults(stack: ChatStack) -> Iterator[object]:
    injector = stack.twilio.faults
    injector.clear(seed=1234)
    yield injector
    injector.clear()


def stored_cmids(stack: ChatStack, sid: str) -> list[str]:
    return [json.loads(m["attributes"])["e2ee"]["cmid"] for m in stack.twilio.messages(sid)]


def test_fifty_sends_under_faults_store_each_message_exactly_once(
    stack: ChatStack, faults: object
) -> None:
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
    injector = stack.twilio.faults
    rate_limit = injector.add("rate_limit", method="POST", path=MESSAGES, rate=0.15, retry_after=2)
    server_error = injector.add("server_error", method="POST", path=MESSAGES, rate=0.1)
    lost = injector.add("answer_lost", method="POST", path=MESSAGES, rate=0.2)
    lookup_errors = injector.add("server_error", method="GET", path=MESSAGES, rate=0.3)
    sent = [conv.send(f"message {n:02d}") for n in range(50)]
    injector.clear()
    # every kind of fault really happened
    assert rate_limit.hits > 0 and server_error.hits > 0 and lost.hits > 0
    assert lookup_errors.hits > 0  # lookups themselves failed and were retried
    print(
        f"faults: 429={rate_limit.hits} 503={server_error.hits} lost={lost.hits} "
        f"lookup-503={lookup_errors.hits} sleeps={len(slept)}"
    )
    # Retry-After was honoured for each 429 (2 s asked), backoff otherwise
    assert slept.count(2.0) == rate_limit.hits
    assert sum(1 for s in sent if s.recovered_by_lookup) == lost.hits
    # Twilio stored each message exactly once, in order
    cmids = stored_cmids(stack, sid)
    assert len(cmids) == 50 and Counter(cmids).most_common(1)[0][1] == 1
    assert cmids == [s.client_message_id for s in sent]
    assert [s.sid for s in sent] == [m["sid"] for m in stack.twilio.messages(sid)]
    assert texts(list(bob.conversation(sid).history())) == [f"message {n:02d}" for n in range(50)]


def test_lost_answer_without_lookup_would_duplicate(stack: ChatStack, faults: object) -> None:
    """The control experiment: a naive retry of a lost answer posts twice."""
    alice = User(stack, uid("alice"))
    sid = create_conversation(alice.client, [alice.identity])
    stack.twilio.faults.add("answer_lost", method="POST", path=MESSAGES, times=1)
    messages = alice.client.conversations.v1.conversations(sid).messages
    for _ in range(2):  # what a retry loop without lookup does
        try:
            messages.create(author=alice.identity, body="naive")
            break
        except Exception:
            continue
    assert len(stack.twilio.messages(sid)) == 2


def test_gives_up_with_a_clear_error_and_posts_nothing(stack: ChatStack, faults: object) -> None:
    alice = User(stack, uid("alice"))
    sid = create_conversation(alice.client, [alice.identity])
    conv = EncryptedConversation(
        alice.client,
        EThreeKeys(alice.ethree),
        sid,
        retry_policy=RetryPolicy(max_attempts=3, jitter=0.0),
        sleep=lambda s: None,
    )
    stack.twilio.faults.add("rate_limit", method="POST", path=MESSAGES, retry_after=1)
    with pytest.raises(DeliveryError) as info:
        conv.send("never")
    assert info.value.status == 429 and info.value.code == 20429
    assert not info.value.maybe_posted and stack.twilio.messages(sid) == []
