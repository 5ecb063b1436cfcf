"""A real E3Kit (@virgilsecurity/e3kit-node 2.5.1) and our EThree exchange authEncrypt messages.

E3Kit runs under Node.js pointed at the mock Cards service with ``apiUrl``; its token callback
fetches Virgil JWTs from OUR backend over HTTP (``POST /authenticate`` in development mode, then
``GET /virgil-jwt``), exactly as the browser front-end of Virgil's Twilio demo does. Skipped, with
the reason, when Node.js or the npm package is missing.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.nodepeer import require_node_peer, run_node
from twilio_e2ee import EThree
from twilio_e2ee.backend.client import BackendClient

PACKAGE = "@virgilsecurity/e3kit-node"

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def stack(offline_stack):
    return offline_stack


def our_client(stack, identity: str) -> tuple[EThree, BackendClient]:
    """Our user signs in to the same backend and takes its Virgil JWTs from there too."""
    backend = BackendClient(stack.backend_url)
    backend.login_passwordless(identity)
    client = EThree(
        backend.fetch_virgil_jwt,
        api_url=stack.cards_url,
        cards_service_public_key=stack.cards_service_public_key,
    )
    return client, backend


def test_e3kit_node_and_ethree_exchange_messages_both_ways(stack, tmp_path):
    require_node_peer(PACKAGE)
    py_id, js_id = f"py-{uuid.uuid4().hex[:8]}", f"js-{uuid.uuid4().hex[:8]}"
    ours, backend = our_client(stack, py_id)
    try:
        our_card = ours.register()
        base = {
            "apiUrl": stack.cards_url,
            "backendUrl": stack.backend_url,
            "identity": js_id,
            "peer": py_id,
            "storageDir": str(tmp_path / "e3kit"),
        }
        # E3Kit registers, finds our card (by our identity) and authEncrypts to us.
        first = run_node(
            "e3kit_messages.js",
            {**base, "phase": "register", "plaintext": "hello from E3Kit 🟢"},
            package=PACKAGE,
        )
        assert first["identity"] == js_id
        assert first["peerCardId"] == our_card.id

        # We find E3Kit's card (verified by OUR verifier against the mock's service key)…
        js_card = ours.find_users(js_id)
        assert js_card.id == first["cardId"]
        # …and read its message, signature checked against its card.
        assert ours.auth_decrypt(first["ciphertext"], js_card) == "hello from E3Kit 🟢"

        sent_at = time.time()
        # E3Kit's deprecated encrypt (signThenEncrypt) reads with our legacy decrypt.
        assert ours.decrypt(first["legacyCiphertext"], js_card) == "hello from E3Kit 🟢"

        # We answer; E3Kit (same key storage, second run) reads our message, both forms.
        reply = ours.auth_encrypt("hello from Python 🐍", js_card)
        legacy = ours.encrypt("old-style hello from Python", js_card)
        second = run_node(
            "e3kit_messages.js",
            {**base, "phase": "read", "ciphertext": reply, "legacyCiphertext": legacy},
            package=PACKAGE,
        )
        assert second["peerCardId"] == our_card.id
        assert second["plaintext"] == "hello from Python 🐍"
        assert second["legacyPlaintext"] == "old-style hello from Python"

        # E3Kit loses its key and rotates: the new card chains from the pinned one, its new
        # messages verify, and its old message still verifies with encrypted_at.
        time.sleep(1.05 - (time.time() % 1.0))  # card times have 1 s resolution
        third = run_node(
            "e3kit_messages.js",
            {**base, "phase": "rotate", "plaintext": "after my rotation"},
            package=PACKAGE,
        )
        rotated = ours.find_users(js_id)  # no KeyChangedError: a chained rotation
        assert rotated.id == third["cardId"] != js_card.id
        assert rotated.previous_card_id == js_card.id
        assert ours.auth_decrypt(third["ciphertext"], rotated) == "after my rotation"
        assert (
            ours.auth_decrypt(first["ciphertext"], rotated, encrypted_at=sent_at)
            == "hello from E3Kit 🟢"
        )
    finally:
        ours.close()
        backend.close()
