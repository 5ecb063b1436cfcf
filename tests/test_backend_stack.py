"""Backend-minted tokens against the bundled mock services (shared development credentials).

The mock Cards service accepts the backend's Virgil JWTs and refuses tampered, expired and
foreign-key ones; the mock Twilio service accepts the backend's access tokens and refuses
tampered, expired and wrong-audience (other account / other service) ones.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from mock_services.cards import MockCardsService
from mock_services.twilio import MockTwilioService
from twilio_e2ee.backend import BackendConfig, create_backend_app
from twilio_e2ee.credentials import (
    StackCredentials,
    generate_development_credentials,
    new_twilio_sid,
)

PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def call(app: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def tokens_from_backend(
    creds: StackCredentials, clock: Callable[[], float] = time.time
) -> tuple[str, str]:
    """Sign up through the backend's HTTP API and fetch both tokens."""
    app = create_backend_app(BackendConfig(creds, password_hasher=FAST, clock=clock))
    r = call(app, "POST", "/signup", json={"identity": "alice", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {r.json()['authToken']}"}
    virgil = call(app, "GET", "/virgil-jwt", headers=auth).json()["virgilToken"]
    twilio = call(app, "GET", "/twilio-jwt", headers=auth).json()["twilioToken"]
    return virgil, twilio


def flip_signature(token: str) -> str:
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[-1] ^= 0x01
    return f"{head}.{body}." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def forge_identity(token: str, identity: str) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if "sub" in claims and str(claims["sub"]).startswith("identity-"):
        claims["sub"] = f"identity-{identity}"
    else:
        claims["grants"]["identity"] = identity
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{encoded}.{sig}"


@pytest.fixture(scope="module")
def creds() -> StackCredentials:
    return generate_development_credentials()


@pytest.fixture(scope="module")
def cards(creds: StackCredentials) -> MockCardsService:
    v = creds.virgil
    return MockCardsService(v.app_id, v.app_key_id, v.app_public_key)


@pytest.fixture(scope="module")
def twilio(creds: StackCredentials) -> MockTwilioService:
    return MockTwilioService(creds.twilio)


def search(cards: MockCardsService, token: str) -> httpx.Response:
    return call(
        cards.app,
        "POST",
        "/card/v5/actions/search",
        json={"identities": ["alice"]},
        headers={"Authorization": f"Virgil {token}"},
    )


def list_conversations(twilio: MockTwilioService, token: str) -> httpx.Response:
    return call(twilio.app, "GET", "/v1/Conversations", headers={"X-Twilio-Token": token})


def test_virgil_jwt_accepted_by_mock_cards(creds: StackCredentials, cards: Any) -> None:
    virgil, _ = tokens_from_backend(creds)
    r = search(cards, virgil)
    assert r.status_code == 200, r.text
    assert cards.journal.entries[-1].identity == "alice"  # the identity came from the JWT


@pytest.mark.parametrize(
    "mutate", [flip_signature, lambda t: forge_identity(t, "mallory")], ids=["flip", "forge"]
)
def test_tampered_virgil_jwt_refused_by_mock_cards(
    creds: StackCredentials, cards: Any, mutate: Callable[[str], str]
) -> None:
    virgil, _ = tokens_from_backend(creds)
    r = search(cards, mutate(virgil))
    assert r.status_code == 401 and "code" in r.json() and "message" in r.json()


def test_expired_and_foreign_virgil_jwt_refused_by_mock_cards(
    creds: StackCredentials, cards: Any
) -> None:
    expired, _ = tokens_from_backend(creds, clock=lambda: time.time() - 3600)
    r = search(cards, expired)
    assert r.status_code == 401 and "expired" in r.json()["message"]
    other = generate_development_credentials()  # another app key: wrong kid
    foreign, _ = tokens_from_backend(other)
    assert search(cards, foreign).status_code == 401
    # Same kid and app id, but signed by another key: the signature check refuses it.
    rogue = replace(creds, virgil=replace(other.virgil, app_id=creds.virgil.app_id,
                                          app_key_id=creds.virgil.app_key_id))  # fmt: skip
    forged, _ = tokens_from_backend(rogue)
    assert search(cards, forged).status_code == 401


def test_twilio_token_accepted_by_mock_twilio(creds: StackCredentials, twilio: Any) -> None:
    _, token = tokens_from_backend(creds)
    r = list_conversations(twilio, token)
    assert r.status_code == 200, r.text
    assert "conversations" in r.json()


def twilio_error(r: httpx.Response) -> int:
    assert r.status_code == 401, r.text
    return int(r.json()["code"])


def test_bad_twilio_tokens_refused_by_mock_twilio(creds: StackCredentials, twilio: Any) -> None:
    _, token = tokens_from_backend(creds)
    assert twilio_error(list_conversations(twilio, flip_signature(token))) == 20107
    assert twilio_error(list_conversations(twilio, forge_identity(token, "mallory"))) == 20107
    _, expired = tokens_from_backend(creds, clock=lambda: time.time() - 2 * 3600)
    assert twilio_error(list_conversations(twilio, expired)) == 20104
    # Wrong audience: same API key and secret, minted for another account.
    other_account = replace(creds, twilio=replace(creds.twilio, account_sid=new_twilio_sid("AC")))
    _, foreign = tokens_from_backend(other_account)
    assert twilio_error(list_conversations(twilio, foreign)) == 20103
    # Another API key entirely.
    _, unknown_key = tokens_from_backend(generate_development_credentials())
    assert twilio_error(list_conversations(twilio, unknown_key)) == 20103


def test_twilio_token_for_other_service_refused(creds: StackCredentials, twilio: Any) -> None:
    other_service = replace(creds, twilio=replace(creds.twilio, service_sid=new_twilio_sid("IS")))
    _, token = tokens_from_backend(other_service)
    r = list_conversations(twilio, token)
    assert r.status_code in (401, 403, 404), r.text  # the mock knows no such service
    assert "conversations" not in r.json()
