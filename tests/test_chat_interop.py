"""A real E3Kit (@virgilsecurity/e3kit-node) and EncryptedConversation share a Twilio conversation.

As in Virgil's Twilio demo, the E3Kit side posts ``authEncrypt(text, cards)`` (base64) as the
message body with no attributes; our adapter reads it from Twilio's history, and E3Kit reads the
body our adapter posted. Skipped, with the reason, when Node.js or the npm package is missing.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests import test_chat_helpers as helpers
from tests.nodepeer import require_node_peer, run_node
from tests.test_chat_helpers import ChatStack, User
from twilio_e2ee.chat import DecryptedMessage
from twilio_e2ee.chat.conversation import create_conversation

PACKAGE = "@virgilsecurity/e3kit-node"

pytestmark = pytest.mark.interop

stack = helpers.stack  # fixtures


def test_e3kit_node_and_adapter_read_each_other_through_twilio(
    stack: ChatStack, offline_stack: object, tmp_path: Path
) -> None:
    require_node_peer(PACKAGE)
    py = User(stack, f"py-{uuid.uuid4().hex[:8]}")
    js_id = f"js-{uuid.uuid4().hex[:8]}"
    base = {
        "apiUrl": stack.cards_url,
        "backendUrl": offline_stack.backend_url,  # type: ignore[attr-defined]
        "identity": js_id,
        "peer": py.identity,
        "storageDir": str(tmp_path / "e3kit"),
    }
    first = run_node(
        "e3kit_messages.js",
        {**base, "phase": "register", "plaintext": "hi from an E3Kit front-end 🟢"},
        package=PACKAGE,
    )
    sid = create_conversation(py.client, [py.identity, js_id])
    # what the JS demo does: channel.sendMessage(await eThree.authEncrypt(text, cards))
    py.client.conversations.v1.conversations(sid).messages.create(
        author=js_id, body=first["ciphertext"]
    )
    conv = py.conversation(sid)
    sent = conv.send("hi from the Python adapter 🐍")
    items = list(conv.history())
    assert isinstance(items[0], DecryptedMessage) and items[0].author == js_id
    assert items[0].text == "hi from an E3Kit front-end 🟢"
    assert items[0].sender_card_id == first["cardId"]
    # E3Kit reads the body exactly as Twilio stores it
    stored = py.client.conversations.v1.conversations(sid).messages(sent.sid).fetch()
    second = run_node(
        "e3kit_messages.js", {**base, "phase": "read", "ciphertext": stored.body}, package=PACKAGE
    )
    assert second["plaintext"] == "hi from the Python adapter 🐍"
