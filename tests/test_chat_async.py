"""AsyncEncryptedConversation: the SDK's async client, same guarantees as the sync adapter."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests import test_chat_helpers as helpers
from tests.test_chat_helpers import ChatStack, User, texts, uid
from twilio_e2ee.chat import RetryPolicy
from twilio_e2ee.chat.aconversation import AsyncEncryptedConversation
from twilio_e2ee.chat.conversation import create_conversation
from twilio_e2ee.chat.keys import EThreeKeys
from twilio_e2ee.errors import ChatError
from twilio_e2ee.twilio_http import twilio_rest_client

stack = helpers.stack  # fixtures

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # aiohttp BasicAuth


def test_async_send_and_history_under_faults(stack: ChatStack) -> None:
    alice, bob = User(stack, uid("alice")), User(stack, uid("bob"))
    sid = create_conversation(alice.client, [alice.identity, bob.identity])
    tw = stack.credentials.twilio
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    async def main() -> tuple[list[Any], list[Any]]:
        client = twilio_rest_client(
            tw.account_sid, tw.auth_token, base_url=stack.twilio_url, async_=True
        )
        try:
            conv = AsyncEncryptedConversation(
                client,
                EThreeKeys(alice.ethree),
                sid,
                retry_policy=RetryPolicy(max_attempts=20, base_delay=0.01, jitter=0.0),
                sleep=fake_sleep,
            )
            faults = stack.twilio.faults
            faults.clear(seed=99)
            faults.add("rate_limit", method="POST", path="*/Messages", rate=0.3, retry_after=3)
            faults.add("answer_lost", method="POST", path="*/Messages", rate=0.3)
            try:
                sent = [await conv.send(f"async {n}") for n in range(10)]
            finally:
                faults.clear()
            reader = AsyncEncryptedConversation(client, EThreeKeys(bob.ethree), sid)
            got = [item async for item in reader.history(page_size=3)]
            return sent, got
        finally:
            await client.http_client.close()

    sent, got = asyncio.run(main())
    assert texts(got) == [f"async {n}" for n in range(10)]
    stored = stack.twilio.messages(sid)
    cmids = [json.loads(m["attributes"])["e2ee"]["cmid"] for m in stored]
    assert cmids == [s.client_message_id for s in sent]  # each exactly once, in order
    assert any(s.recovered_by_lookup for s in sent) and 3.0 in slept  # Retry-After honoured


def test_async_needs_an_async_client(stack: ChatStack) -> None:
    alice = User(stack, uid("alice"))
    with pytest.raises(ChatError, match="async_=True"):
        AsyncEncryptedConversation(alice.client, EThreeKeys(alice.ethree), "CH" + "0" * 32)
