"""Races over real HTTP: one winner when many clients supersede the same card or push on the
same Keyknox hash (the mock holds its store lock around every check-then-write)."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mock_services.cards import MockCardsService
from twilio_e2ee.cards import create_raw_card
from twilio_e2ee.cards.model import RawSignedModel
from twilio_e2ee.credentials import generate_development_credentials
from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.servers import ServerThread
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt

RACERS = 8


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_concurrent_rotations_and_pushes_have_one_winner(backend: str, tmp_path: Path) -> None:
    app = generate_development_credentials().virgil
    db = tmp_path / "cards.sqlite" if backend == "sqlite" else None
    service = MockCardsService(app.app_id, app.app_key_id, app.app_public_key, db_path=db)
    headers = {"Authorization": "Virgil " + generate_virgil_jwt(app, "alice")}
    with ServerThread(service.app) as server, httpx.Client(base_url=server.url) as http:
        first = http.post(
            "/card/v5",
            json=create_raw_card(generate_key_pair().private_key, "alice").to_json(),
            headers=headers,
        )
        first_id = RawSignedModel.from_json(first.json()).card_id
        rotations = [
            create_raw_card(generate_key_pair().private_key, "alice", previous_card_id=first_id)
            for _ in range(RACERS)
        ]
        with ThreadPoolExecutor(RACERS) as pool:
            answers = list(
                pool.map(
                    lambda m: http.post("/card/v5", json=m.to_json(), headers=headers), rotations
                )
            )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [400] * (RACERS - 1)
        assert all(a.json()["code"] == 40104 for a in answers if a.status_code == 400)
        cards = http.post(
            "/card/v5/actions/search", json={"identities": ["alice"]}, headers=headers
        ).json()
        assert len(cards) == 2

        entry = {"root": "r", "path": "p", "key": "k", "identities": ["alice"], "meta": ""}
        pushed = http.post("/keyknox/v2/push", json={**entry, "value": "AA=="}, headers=headers)
        current = pushed.headers["Virgil-Keyknox-Hash"]

        def push(i: int) -> httpx.Response:
            value = base64.b64encode(bytes([i])).decode()
            return http.post(
                "/keyknox/v2/push",
                json={**entry, "value": value},
                headers={**headers, "Virgil-Keyknox-Previous-Hash": current},
            )

        with ThreadPoolExecutor(RACERS) as pool:
            results = list(pool.map(push, range(RACERS)))
        assert sorted(r.status_code for r in results) == [200] + [409] * (RACERS - 1)
        winner = next(r for r in results if r.status_code == 200)
        pulled = http.post("/keyknox/v2/pull", json={"root": "r", "path": "p", "key": "k"},
                           headers=headers)  # fmt: skip
        assert pulled.json()["value"] == winner.json()["value"]
    service.close()
