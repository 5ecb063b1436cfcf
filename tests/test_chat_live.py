"""Live receiving: the polling cursor (sync and async) and the signed webhook receiver."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests import test_chat_helpers as helpers
from tests.test_chat_helpers import ChatStack, User, texts, uid
from twilio_e2ee.chat import DecryptedMessage, ReceivedItem, RetryPolicy, WebhookReceiver
from twilio_e2ee.chat.conversation import create_conversation
from twilio_e2ee.servers import ServerThread

stack = helpers.stack  # fixtures
alice_bob = helpers.alice_bob


def test_poll_cursor_delivers_each_new_message_once(alice_bob: tuple[User, User, str]) -> None:
    alice, bob, sid = alice_bob
    a = alice.conversation(sid)
    a.send("old, before Bob starts listening")
    poller = bob.conversation(sid).poller(start="now", page_size=2)
    assert poller.poll_once() == []
    for n in range(5):
        a.send(f"live {n}")
    assert texts(poller.poll_once()) == [f"live {n}" for n in range(5)]  # across 3 pages
    assert poller.poll_once() == []
    a.send("one more")
    assert texts(poller.poll_once()) == ["one more"]
    everything = bob.conversation(sid).poller(start="beginning")
    assert len(everything.poll_once()) == 7


def test_poll_iterator_while_sender_runs(alice_bob: tuple[User, User, str]) -> None:
    alice, bob, sid = alice_bob
    poller = bob.conversation(sid).poller(start="now", interval=0.05)
    poller.poll_once()  # fix the cursor before the sender starts

    def sender() -> None:
        a = alice.conversation(sid)
        for n in range(3):
            a.send(f"tick {n}")
            time.sleep(0.05)

    thread = threading.Thread(target=sender)
    thread.start()
    got = list(itertools.islice(poller.iterate(timeout=20), 3))
    thread.join()
    assert texts(got) == ["tick 0", "tick 1", "tick 2"]
    # stop() ends an idle iterator
    threading.Timer(0.2, poller.stop).start()
    assert list(poller.iterate(timeout=20)) == []


def test_async_iterator(alice_bob: tuple[User, User, str]) -> None:
    alice, bob, sid = alice_bob
    poller = bob.conversation(sid).poller(start="beginning", interval=0.05)
    alice.conversation(sid).send("async one")

    async def main() -> list[ReceivedItem]:
        got: list[ReceivedItem] = []
        sender = asyncio.create_task(asyncio.to_thread(alice.conversation(sid).send, "async two"))
        async for item in poller.aiterate(timeout=20):
            got.append(item)
            if len(got) == 2:
                break
        await sender
        return got

    assert texts(asyncio.run(main())) == ["async one", "async two"]


@pytest.fixture()
def receiver(stack: ChatStack) -> Iterator[tuple[WebhookReceiver, ServerThread, list[Any]]]:
    got: list[ReceivedItem] = []
    hook = WebhookReceiver(stack.credentials.twilio.auth_token, got.append, path="/hook")
    server = ServerThread(hook.app, name="webhook-receiver").start()
    try:
        yield hook, server, got
    finally:
        server.stop()


def wait_for(got: list[Any], n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.02)


def test_webhook_from_the_mock_is_verified_and_decrypted(
    stack: ChatStack, receiver: tuple[WebhookReceiver, ServerThread, list[Any]]
) -> None:
    hook, server, got = receiver
    alice, bob = User(stack, uid("alice")), User(stack, uid("bob"))
    sid = create_conversation(alice.client, [alice.identity, bob.identity])
    hook.add(bob.conversation(sid))
    alice.client.conversations.v1.conversations(sid).webhooks.create(
        target="webhook",
        configuration_url=server.url + "/hook",
        configuration_method="POST",
        configuration_filters=["onMessageAdded"],
    )
    alice.conversation(sid).send("pushed to Bob")
    wait_for(got, 1)
    assert texts(got) == ["pushed to Bob"]
    assert isinstance(got[0], DecryptedMessage) and got[0].author == alice.identity
    assert hook.rejected == 0


def test_webhook_rejects_forged_and_dedups_retries(
    stack: ChatStack,
    receiver: tuple[WebhookReceiver, ServerThread, list[Any]],
    alice_bob: tuple[User, User, str],
) -> None:
    hook, server, got = receiver
    alice, bob, sid = alice_bob
    hook.add(bob.conversation(sid))
    sent = alice.conversation(sid).send("signed event")
    url = server.url + "/hook"
    params = {
        "EventType": "onMessageAdded",
        "ConversationSid": sid,
        "MessageSid": sent.sid,
        "Index": str(sent.wire.index),
        "Author": alice.identity,
        "Body": sent.body,
        "Attributes": sent.wire.attributes or "{}",
        "DateCreated": "2030-01-01T00:00:00Z",
    }
    good = RequestValidator(stack.credentials.twilio.auth_token).compute_signature(url, params)
    forged = RequestValidator("not-the-auth-token").compute_signature(url, params)
    with httpx.Client(trust_env=False) as http:
        assert (
            http.post(url, data=params, headers={"X-Twilio-Signature": forged}).status_code == 403
        )
        assert http.post(url, data=params).status_code == 403
        tampered = dict(params, Author=bob.identity)
        assert (
            http.post(url, data=tampered, headers={"X-Twilio-Signature": good}).status_code == 403
        )
        assert got == [] and hook.rejected == 3
        for _ in range(2):  # Twilio retries: delivered once
            r = http.post(url, data=params, headers={"X-Twilio-Signature": good})
            assert r.status_code == 204
    assert texts(got) == ["signed event"]


def test_polling_rides_through_read_faults(stack: ChatStack) -> None:
    alice, bob = User(stack, uid("alice")), User(stack, uid("bob"))
    service = stack.credentials.twilio.service_sid  # service-scoped URLs this time
    sid = create_conversation(alice.client, [alice.identity, bob.identity], service_sid=service)
    poller = bob.conversation(sid, service_sid=service).poller(start="now", interval=0.05)
    poller.poll_once()
    alice.conversation(sid, service_sid=service).send("through the storm")
    faults = stack.twilio.faults
    faults.clear(seed=5)
    fault = faults.add("rate_limit", method="GET", path="*/Messages", times=3, retry_after=0)
    try:
        got = list(itertools.islice(poller.iterate(timeout=20), 1))
    finally:
        faults.clear()
    assert fault.hits == 3
    assert texts(got) == ["through the storm"]


def test_poller_backs_off_on_errors_then_delivers(
    stack: ChatStack, alice_bob: tuple[User, User, str]
) -> None:
    alice, bob, sid = alice_bob
    reader = bob.conversation(sid, retry_policy=RetryPolicy(max_attempts=1))  # errors surface
    poller = reader.poller(start="now", interval=0.05)
    poller.poll_once()
    alice.conversation(sid).send("after the errors")
    faults = stack.twilio.faults
    faults.clear(seed=3)
    faults.add("rate_limit", method="GET", path="*/Messages", times=2, retry_after=0)

    async def main() -> list[ReceivedItem]:
        got: list[ReceivedItem] = []
        async for item in poller.aiterate(timeout=20):
            got.append(item)
            break
        return got

    try:
        got = asyncio.run(main())
    finally:
        faults.clear()
    assert poller.errors == 2
    assert texts(got) == ["after the errors"]
