"""The same adapter against REAL Twilio Conversations (skipped unless credentials are set).

Only the Twilio client changes (no ``base_url``); cards still come from the bundled mock Cards
service, which real Twilio never needs to reach. Set ``TWILIO_ACCOUNT_SID`` and
``TWILIO_AUTH_TOKEN`` to run it; it creates one conversation and deletes it at the end.
"""

from __future__ import annotations

import os

import pytest

from tests import test_chat_helpers as helpers
from tests.test_chat_helpers import ChatStack, User, texts, uid
from twilio_e2ee.chat import create_conversation
from twilio_e2ee.twilio_http import twilio_rest_client

stack = helpers.stack  # fixtures

ACCOUNT = os.environ.get("TWILIO_ACCOUNT_SID")
TOKEN = os.environ.get("TWILIO_AUTH_TOKEN")

pytestmark = pytest.mark.skipif(
    not (ACCOUNT and TOKEN),
    reason="real Twilio not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
)


def test_encrypted_exchange_on_real_twilio(stack: ChatStack) -> None:
    assert ACCOUNT and TOKEN
    alice, bob = User(stack, uid("alice")), User(stack, uid("bob"))
    client = twilio_rest_client(ACCOUNT, TOKEN)  # no base_url: https://conversations.twilio.com
    alice.client = bob.client = client
    sid = create_conversation(client, [alice.identity, bob.identity], friendly_name="e2ee test")
    try:
        alice.conversation(sid).send("hello over real Twilio")
        bob.conversation(sid).send("and back")
        items = list(bob.conversation(sid).history())
        assert texts(items) == ["hello over real Twilio", "and back"]
        stored = client.conversations.v1.conversations(sid).messages.list()
        assert all("real Twilio" not in (m.body or "") for m in stored)
    finally:
        client.conversations.v1.conversations(sid).delete()
