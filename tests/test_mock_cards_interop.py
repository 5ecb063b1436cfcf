"""Real E3Kit (@virgilsecurity/e3kit-node 2.5.1) against the mock Cards service, both ways.

E3Kit registers and finds users on the mock (its apiUrl pointed at it); its cards pass our
verifier with the mock's service key, and cards our CardsClient publishes (with a rotation) are
found by E3Kit. Skips, with the reason, when Node.js or the npm package is missing.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mock_services.cards import MockCardsService
from tests.nodepeer import INTEROP, NODE_FLAGS, require_node_peer
from twilio_e2ee.cards import CardsClient
from twilio_e2ee.credentials import VirgilAppCredentials, generate_development_credentials
from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.servers import ServerThread
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt

pytestmark = pytest.mark.interop
PACKAGE = "@virgilsecurity/e3kit-node"


@pytest.fixture
def app_creds() -> VirgilAppCredentials:
    return generate_development_credentials().virgil


@pytest.fixture
def service(app_creds: VirgilAppCredentials) -> MockCardsService:
    return MockCardsService(app_creds.app_id, app_creds.app_key_id, app_creds.app_public_key)


@pytest.fixture
def server(service: MockCardsService) -> Iterator[ServerThread]:
    with ServerThread(service.app, name="mock-cards") as thread:
        yield thread


def _run_e3kit(payload: dict[str, Any], cwd: Path) -> Any:
    node = require_node_peer(PACKAGE)
    proc = subprocess.run(
        [node, *NODE_FLAGS, str(INTEROP / "e3kit_cards.js")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,  # E3Kit writes local storage relative to the cwd: keep it in a temp dir
    )
    if proc.returncode != 0:
        raise AssertionError(f"e3kit_cards.js failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def test_e3kit_and_our_client_share_the_mock_directory(
    service: MockCardsService,
    server: ServerThread,
    app_creds: VirgilAppCredentials,
    tmp_path: Path,
) -> None:
    require_node_peer(PACKAGE)

    def client(identity: str) -> CardsClient:
        return CardsClient(
            lambda: generate_virgil_jwt(app_creds, identity),
            base_url=server.url,
            service_public_key=service.service_public_key,
        )

    # our side publishes a card for py-carol, then rotates it
    with client("py-carol") as carol:
        old = carol.publish_card(generate_key_pair().private_key)
        new_key = generate_key_pair().private_key
        new = carol.publish_card(new_key, previous_card_id=old.id)

    e3_users = ["e3-alice", "e3-bob"]
    tokens = {i: generate_virgil_jwt(app_creds, i, ttl=3600) for i in [*e3_users, "py-carol"]}
    out = _run_e3kit(
        {
            "apiUrl": server.url,
            "storageDir": str(tmp_path / "e3kit"),
            "tokens": tokens,
            "register": e3_users,
            "finder": "e3-alice",
            "find": ["e3-bob", "py-carol"],
        },
        tmp_path,
    )

    # E3Kit finds our rotated card: the head of the chain, with our key
    carol_seen = out["found"]["py-carol"]
    assert carol_seen["cardId"] == new.id and carol_seen["previousCardId"] == old.id
    assert base64.b64decode(carol_seen["publicKey"]) == new_key.public_key.der
    assert out["found"]["e3-bob"]["cardId"] == out["registered"]["e3-bob"]["cardId"]

    # E3Kit's cards pass our verifier (self signature by E3Kit, virgil signature by the mock)
    with client("py-carol") as carol:
        cards = carol.search_cards(e3_users)
        assert sorted(c.identity for c in cards) == e3_users
        for card in cards:
            seen = out["registered"][card.identity]
            assert card.id == seen["cardId"]
            assert card.public_key.der == base64.b64decode(seen["publicKey"])
            assert carol.get_card(card.id).id == card.id

    # the directory saw E3Kit's register flow (search, then publish) under the JWT identities
    published = [
        e for e in service.journal.filter(service="cards", method="POST") if e.path == "/card/v5"
    ]
    assert {e.identity for e in published if e.status == 200} == {"py-carol", *e3_users}
    assert all(e.status == 200 for e in service.journal.filter(service="cards"))


def test_e3kit_rotation_and_unregister_reach_our_client(
    service: MockCardsService,
    server: ServerThread,
    app_creds: VirgilAppCredentials,
    tmp_path: Path,
) -> None:
    """E3Kit's rotatePrivateKey supersedes its card on the mock; unregister revokes it."""
    require_node_peer(PACKAGE)
    users = ["e3-erin", "e3-frank"]
    out = _run_e3kit(
        {
            "apiUrl": server.url,
            "storageDir": str(tmp_path / "e3kit"),
            "tokens": {i: generate_virgil_jwt(app_creds, i, ttl=3600) for i in users},
            "register": users,
            "rotate": ["e3-erin"],
            "unregister": ["e3-frank"],
        },
        tmp_path,
    )
    first, rotated = out["registered"]["e3-erin"], out["rotated"]["e3-erin"]
    assert rotated["previousCardId"] == first["cardId"] != rotated["cardId"]
    with CardsClient(
        lambda: generate_virgil_jwt(app_creds, "observer"),
        base_url=server.url,
        service_public_key=service.service_public_key,
    ) as observer:
        (erin,) = observer.search_cards("e3-erin")
        assert erin.id == rotated["cardId"]
        assert erin.previous_card is not None and erin.previous_card.id == first["cardId"]
        assert erin.public_key.der == base64.b64decode(rotated["publicKey"])
        assert observer.get_card(first["cardId"]).is_outdated
        assert observer.search_cards("e3-frank") == []
        assert observer.get_card(out["registered"]["e3-frank"]["cardId"]).is_outdated
    revokes = service.journal.filter(path_contains="/actions/revoke/")
    assert [(e.identity, e.status) for e in revokes] == [("e3-frank", 200)]


def test_e3kit_reports_unknown_users(
    server: ServerThread, app_creds: VirgilAppCredentials, tmp_path: Path
) -> None:
    require_node_peer(PACKAGE)
    out = _run_e3kit(
        {
            "apiUrl": server.url,
            "storageDir": str(tmp_path / "e3kit"),
            "tokens": {"e3-dave": generate_virgil_jwt(app_creds, "e3-dave", ttl=3600)},
            "register": ["e3-dave"],
            "finder": "e3-dave",
            "find": ["nobody-here"],
        },
        tmp_path,
    )
    assert out["notFound"] == ["nobody-here"] and out["found"] == {}
