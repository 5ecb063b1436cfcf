"""The mock Cards v5 service: Virgil's endpoints, JWT checks, supersede/revoke, errors, SQLite."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from mock_services.cards import MockCardsService
from mock_services.journal import Journal
from twilio_e2ee.cards import CardsClient, CardVerifier, create_raw_card
from twilio_e2ee.cards.model import Card, RawSignedModel
from twilio_e2ee.credentials import VirgilAppCredentials, generate_development_credentials
from twilio_e2ee.crypto import generate_key_pair, verify
from twilio_e2ee.crypto.keys import PrivateKey
from twilio_e2ee.tokens.virgil_jwt import encode_virgil_jwt, generate_virgil_jwt

SMALL_ORDER_KEY = bytes(32)  # y = 0 ... the identity-adjacent point (order 4)
SUPERSEDED = "X-Virgil-Is-Superseeded"


@pytest.fixture
def app_creds() -> VirgilAppCredentials:
    return generate_development_credentials().virgil


@pytest.fixture
def service(app_creds: VirgilAppCredentials) -> MockCardsService:
    return MockCardsService(app_creds.app_id, app_creds.app_key_id, app_creds.app_public_key)


@pytest.fixture
def http(service: MockCardsService) -> Iterator[TestClient]:
    with TestClient(service.app) as client:
        yield client


@pytest.fixture
def auth(app_creds: VirgilAppCredentials) -> Callable[[str], dict[str, str]]:
    def make(identity: str) -> dict[str, str]:
        return {"Authorization": "Virgil " + generate_virgil_jwt(app_creds, identity)}

    return make


def _state(http: TestClient, auth: Callable[[str], dict[str, str]], *ids: str) -> Any:
    resp = http.post(
        "/card/v5/actions/search", json={"identities": list(ids)}, headers=auth(ids[0])
    )
    assert resp.status_code == 200
    return resp.json()


def _publish(http: TestClient, auth: Any, key: PrivateKey, identity: str, **kw: Any) -> Any:
    model = create_raw_card(key, identity, **kw)
    return http.post("/card/v5", json=model.to_json(), headers=auth(identity))


def test_publish_adds_a_valid_service_signature(
    http: TestClient, service: MockCardsService, auth: Any
) -> None:
    key = generate_key_pair().private_key
    model = create_raw_card(key, "alice")
    resp = http.post("/card/v5", json=model.to_json(), headers=auth("alice"))
    assert resp.status_code == 200, resp.text
    back = RawSignedModel.from_json(resp.json())
    assert back.content_snapshot == model.content_snapshot  # byte-exact, never re-serialised
    virgil = back.signature("virgil")
    assert virgil is not None and virgil.snapshot is None
    assert verify(back.content_snapshot, virgil.signature, service.service_public_key)
    CardVerifier(service.service_public_key).verify(Card.from_raw(back))
    assert [c["content_snapshot"] for c in _state(http, auth, "alice")] == [
        resp.json()["content_snapshot"]
    ]


def test_foreign_key_order_snapshot_is_kept_byte_exact(http: TestClient, auth: Any) -> None:
    key = generate_key_pair().private_key
    pub = base64.b64encode(key.public_key.der).decode()
    snapshot = json.dumps(
        {"version": "5.0", "public_key": pub, "identity": "alice", "created_at": 1700000000},
        indent=1,
    ).encode()
    model = RawSignedModel(snapshot).add_signature("self", key, {"device": "phone"})
    resp = http.post("/card/v5", json=model.to_json(), headers=auth("alice"))
    assert resp.status_code == 200, resp.text
    got = RawSignedModel.from_json(resp.json())
    assert got.content_snapshot == snapshot and got.card_id == model.card_id
    got_self = got.signature("self")
    assert got_self is not None and got_self.snapshot == b'{"device":"phone"}'


def test_rotation_supersedes_and_revocation_hides(http: TestClient, auth: Any) -> None:
    k1, k2 = generate_key_pair().private_key, generate_key_pair().private_key
    c1 = _publish(http, auth, k1, "alice").json()
    id1 = RawSignedModel.from_json(c1).card_id
    assert SUPERSEDED not in http.get(f"/card/v5/{id1}", headers=auth("bob")).headers
    c2 = _publish(http, auth, k2, "alice", previous_card_id=id1).json()
    id2 = RawSignedModel.from_json(c2).card_id
    got = http.get(f"/card/v5/{id1}", headers=auth("bob"))
    assert got.status_code == 200 and got.headers[SUPERSEDED] == "true"
    assert got.json() == c1
    assert len(_state(http, auth, "alice")) == 2  # search keeps the chain; clients link it
    outdated = http.post(
        "/card/v5/actions/updated", json={"card_ids": [id1, id2]}, headers=auth("bob")
    )
    assert outdated.json() == [id1]
    # a superseded card cannot be superseded again
    again = _publish(http, auth, generate_key_pair().private_key, "alice", previous_card_id=id1)
    assert again.status_code == 400 and again.json()["code"] == 40104
    assert len(_state(http, auth, "alice")) == 2
    # revoke: only the owner, then the card leaves search but get still answers, superseded
    assert http.post(f"/card/v5/actions/revoke/{id2}", headers=auth("bob")).status_code == 403
    assert http.post(f"/card/v5/actions/revoke/{id2}", headers=auth("alice")).status_code == 200
    assert [RawSignedModel.from_json(c).card_id for c in _state(http, auth, "alice")] == [id1]
    assert http.get(f"/card/v5/{id2}", headers=auth("bob")).headers[SUPERSEDED] == "true"
    assert http.post(f"/card/v5/actions/revoke/{id2}", headers=auth("alice")).status_code == 200


def test_previous_card_of_another_identity_is_refused(http: TestClient, auth: Any) -> None:
    bob_card = _publish(http, auth, generate_key_pair().private_key, "bob").json()
    bob_id = RawSignedModel.from_json(bob_card).card_id
    resp = _publish(http, auth, generate_key_pair().private_key, "alice", previous_card_id=bob_id)
    assert resp.status_code == 400 and resp.json()["code"] == 40104
    missing = _publish(
        http, auth, generate_key_pair().private_key, "alice", previous_card_id="ab" * 32
    )
    assert missing.status_code == 400 and missing.json()["code"] == 40104
    assert _state(http, auth, "alice") == []
    assert http.get(f"/card/v5/{bob_id}", headers=auth("x")).headers.get(SUPERSEDED) is None


def test_publishing_for_another_identity_is_forbidden(http: TestClient, auth: Any) -> None:
    model = create_raw_card(generate_key_pair().private_key, "bob")
    resp = http.post("/card/v5", json=model.to_json(), headers=auth("mallory"))
    assert resp.status_code == 403 and resp.json()["code"] == 40103
    assert _state(http, auth, "bob") == []


def _bad_models() -> dict[str, Callable[[PrivateKey], Any]]:
    def with_snapshot(key: PrivateKey, content: dict[str, Any]) -> Any:
        return RawSignedModel(json.dumps(content).encode()).add_signature("self", key).to_json()

    def content(key: PrivateKey, **over: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "created_at": int(time.time()),
            "identity": "alice",
            "public_key": base64.b64encode(key.public_key.der).decode(),
            "version": "5.0",
        }
        base.update(over)
        return base

    def forged_self(key: PrivateKey) -> Any:
        good = create_raw_card(key, "alice").to_json()
        other = create_raw_card(generate_key_pair().private_key, "alice").to_json()
        good["signatures"][0]["signature"] = other["signatures"][0]["signature"]
        return good

    def no_self(key: PrivateKey) -> Any:
        return {"content_snapshot": create_raw_card(key, "alice").to_json()["content_snapshot"]}

    def with_virgil(key: PrivateKey) -> Any:
        return create_raw_card(key, "alice").add_signature("virgil", key).to_json()

    small_order_spki = base64.b64encode(bytes.fromhex("302a300506032b6570032100") + bytes(32))
    return {
        "40100-bad-base64": lambda k: {"content_snapshot": "!!not base64!!", "signatures": []},
        "40100-signatures-not-list": lambda k: {"content_snapshot": "e30=", "signatures": 5},
        "40101-version": lambda k: with_snapshot(k, content(k, version="4.0")),
        "40101-no-identity": lambda k: with_snapshot(k, content(k, identity="")),
        "40101-small-order-key": lambda k: with_snapshot(
            k, content(k, public_key=small_order_spki.decode())
        ),
        "40101-created-at": lambda k: with_snapshot(k, content(k, created_at="yesterday")),
        "40101-snapshot-not-object": lambda k: (
            RawSignedModel(b"[1,2]").add_signature("self", k).to_json()
        ),
        "40102-forged-self": forged_self,
        "40102-no-self": no_self,
        "40106-client-virgil-signature": with_virgil,
        "40000-array-body": lambda k: [create_raw_card(k, "alice").to_json()],
    }


@pytest.mark.parametrize("case", sorted(_bad_models()))
def test_bad_cards_get_virgil_errors_and_change_nothing(
    http: TestClient, service: MockCardsService, auth: Any, case: str
) -> None:
    body = _bad_models()[case](generate_key_pair().private_key)
    resp = http.post("/card/v5", json=body, headers=auth("alice"))
    expected = int(case.split("-")[0])
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == expected and isinstance(resp.json()["message"], str)
    assert _state(http, auth, "alice") == []
    entry = service.journal.filter(method="POST", path_contains="/card/v5")[-2]
    assert entry.status == 400 and entry.identity == "alice"


def test_malformed_json_oversized_and_duplicate(http: TestClient, auth: Any) -> None:
    resp = http.post("/card/v5", content=b"{not json", headers=auth("alice"))
    assert resp.status_code == 400 and resp.json()["code"] == 40000
    big = b'{"content_snapshot": "' + b"A" * (70 * 1024) + b'"}'
    resp = http.post("/card/v5", content=big, headers=auth("alice"))
    assert resp.status_code == 413 and resp.json()["code"] == 40001
    key = generate_key_pair().private_key
    model = create_raw_card(key, "alice")
    assert http.post("/card/v5", json=model.to_json(), headers=auth("alice")).status_code == 200
    dup = http.post("/card/v5", json=model.to_json(), headers=auth("alice"))
    assert dup.status_code == 409 and dup.json()["code"] == 40105
    assert len(_state(http, auth, "alice")) == 1


def test_search_get_revoke_validation(http: TestClient, auth: Any) -> None:
    h = auth("alice")
    for body in ({}, {"identities": []}, {"identities": "alice"}, {"identities": [1]}):
        resp = http.post("/card/v5/actions/search", json=body, headers=h)
        assert resp.status_code == 400 and resp.json()["code"] == 40107
    too_many = {"identities": [f"u{i}" for i in range(51)]}
    assert http.post("/card/v5/actions/search", json=too_many, headers=h).status_code == 400
    assert (
        http.post("/card/v5/actions/search", json={"identities": ["nobody"]}, headers=h).json()
        == []
    )
    unknown = "0" * 64
    resp = http.get(f"/card/v5/{unknown}", headers=h)
    assert resp.status_code == 404 and resp.json() == {"code": 40400, "message": "card not found"}
    assert http.get("/card/v5/XYZ", headers=h).json()["code"] == 40108
    assert http.post(f"/card/v5/actions/revoke/{unknown}", headers=h).status_code == 404
    resp = http.post("/card/v5/actions/updated", json={"card_ids": ["nope"]}, headers=h)
    assert resp.status_code == 400 and resp.json()["code"] == 40108
    resp = http.get("/card/v6/whatever", headers=h)
    assert resp.status_code == 404 and resp.json()["code"] == 10001


def _forged(app: VirgilAppCredentials, identity: str) -> str:
    return generate_virgil_jwt(
        VirgilAppCredentials(app.app_id, generate_key_pair().private_key, app.app_key_id), identity
    )


@pytest.mark.parametrize(
    ("name", "header", "code"),
    [
        ("missing", lambda a: None, 20300),
        ("bearer", lambda a: "Bearer " + generate_virgil_jwt(a, "alice"), 20300),
        ("empty", lambda a: "Virgil ", 20300),
        ("garbage", lambda a: "Virgil abc.def.ghi", 20301),
        ("forged", lambda a: "Virgil " + _forged(a, "alice"), 20301),
        (
            "other-kid",
            lambda a: (
                "Virgil "
                + generate_virgil_jwt(VirgilAppCredentials(a.app_id, a.app_key, "ff" * 8), "alice")
            ),
            20301,
        ),
        (
            "other-app",
            lambda a: (
                "Virgil "
                + generate_virgil_jwt(VirgilAppCredentials("00" * 16, a.app_key, a.app_key_id), "a")
            ),
            20301,
        ),
        (
            "wrong-cty",
            lambda a: (
                "Virgil "
                + encode_virgil_jwt(
                    {"alg": "VEDS512", "kid": a.app_key_id, "typ": "JWT", "cty": "other"},
                    {
                        "iss": "virgil-" + a.app_id,
                        "sub": "identity-alice",
                        "iat": int(time.time()),
                        "exp": int(time.time()) + 60,
                    },
                    a.app_key,
                )
            ),
            20301,
        ),
        (
            "expired",
            lambda a: "Virgil " + generate_virgil_jwt(a, "alice", ttl=60, now=time.time() - 3600),
            20304,
        ),
    ],
)
def test_bad_tokens_are_401_and_change_nothing(
    http: TestClient,
    service: MockCardsService,
    app_creds: VirgilAppCredentials,
    auth: Any,
    name: str,
    header: Callable[[VirgilAppCredentials], str | None],
    code: int,
) -> None:
    value = header(app_creds)
    headers = {} if value is None else {"Authorization": value}
    model = create_raw_card(generate_key_pair().private_key, "alice")
    resp = http.post("/card/v5", json=model.to_json(), headers=headers)
    assert resp.status_code == 401 and resp.json()["code"] == code, resp.text
    assert http.get("/card/v5/" + "0" * 64, headers=headers).status_code == 401
    assert _state(http, auth, "alice") == []
    entry = service.journal.filter(method="POST", path_contains="/card/v5")[0]
    assert entry.identity is None and entry.status == 401


def test_journal_records_identity_body_and_status(
    http: TestClient, service: MockCardsService, auth: Any
) -> None:
    _publish(http, auth, generate_key_pair().private_key, "alice")
    http.post("/card/v5/actions/search", json={"identities": ["alice"]}, headers=auth("bob"))
    publish, search = service.journal.filter(service="cards")
    assert (publish.method, publish.path, publish.status, publish.identity) == (
        "POST",
        "/card/v5",
        200,
        "alice",
    )
    assert (
        "content_snapshot" in publish.request
        and publish.response["signatures"][-1]["signer"] == "virgil"
    )
    assert search.identity == "bob" and search.request == {"identities": ["alice"]}
    assert len(search.response) == 1


def test_sqlite_state_survives_a_restart(app_creds: VirgilAppCredentials, tmp_path: Path) -> None:
    db = tmp_path / "cards.sqlite"
    first = MockCardsService(
        app_creds.app_id, app_creds.app_key_id, app_creds.app_public_key, db_path=db
    )
    h = {"Authorization": "Virgil " + generate_virgil_jwt(app_creds, "alice")}
    with TestClient(first.app) as http:
        k1, k2 = generate_key_pair().private_key, generate_key_pair().private_key
        id1 = RawSignedModel.from_json(
            http.post("/card/v5", json=create_raw_card(k1, "alice").to_json(), headers=h).json()
        ).card_id
        m2 = create_raw_card(k2, "alice", previous_card_id=id1)
        assert http.post("/card/v5", json=m2.to_json(), headers=h).status_code == 200
        revoked = create_raw_card(generate_key_pair().private_key, "alice").to_json()
        rid = RawSignedModel.from_json(revoked).card_id
        http.post("/card/v5", json=revoked, headers=h)
        http.post(f"/card/v5/actions/revoke/{rid}", headers=h)
        push = {
            "root": "e3kit",
            "path": "backup",
            "key": "k",
            "identities": ["alice"],
            "meta": "",
            "value": "AAAA",
        }
        kk_hash = http.post("/keyknox/v2/push", json=push, headers=h).headers["Virgil-Keyknox-Hash"]
    first.close()
    second = MockCardsService(
        app_creds.app_id, app_creds.app_key_id, app_creds.app_public_key, db_path=db
    )
    assert second.service_public_key == first.service_public_key
    with TestClient(second.app) as http:
        found = http.post("/card/v5/actions/search", json={"identities": ["alice"]}, headers=h)
        cards = [Card.from_raw(RawSignedModel.from_json(c)) for c in found.json()]
        assert {c.id for c in cards} == {id1, m2.card_id}
        verifier = CardVerifier(second.service_public_key)
        for card in cards:
            verifier.verify(card)
        assert http.get(f"/card/v5/{id1}", headers=h).headers[SUPERSEDED] == "true"
        assert http.get(f"/card/v5/{rid}", headers=h).headers[SUPERSEDED] == "true"
        pulled = http.post(
            "/keyknox/v2/pull", json={"root": "e3kit", "path": "backup", "key": "k"}, headers=h
        )
        assert pulled.json()["value"] == "AAAA" and pulled.headers["Virgil-Keyknox-Hash"] == kk_hash
    second.close()


def test_given_service_key_is_used(app_creds: VirgilAppCredentials) -> None:
    key = generate_key_pair().private_key
    svc = MockCardsService(
        app_creds.app_id,
        app_creds.app_key_id,
        app_creds.app_public_key,
        service_key=key,
        journal=(journal := Journal()),
    )
    assert svc.service_public_key == key.public_key and svc.journal is journal


def test_our_cards_client_against_the_mock(
    service: MockCardsService, app_creds: VirgilAppCredentials
) -> None:
    """The package's CardsClient (verifying with the mock's key) publishes, finds, rotates."""
    with TestClient(service.app, base_url="http://testserver") as http_client:
        assert isinstance(http_client, httpx.Client)

        def client(identity: str) -> CardsClient:
            return CardsClient(
                lambda: generate_virgil_jwt(app_creds, identity),
                base_url="http://testserver",
                service_public_key=service.service_public_key,
                http_client=http_client,
            )

        alice, bob = client("alice"), client("bob")
        k1 = generate_key_pair().private_key
        card = alice.publish_card(k1)
        found = bob.search_cards(["alice"])
        assert [c.id for c in found] == [card.id] and found[0].public_key == k1.public_key
        rotated = alice.publish_card(generate_key_pair().private_key, previous_card_id=card.id)
        heads = bob.search_cards("alice")
        assert [c.id for c in heads] == [rotated.id]
        assert heads[0].previous_card is not None and heads[0].previous_card.id == card.id
        assert bob.get_card(card.id).is_outdated
        assert bob.get_outdated([card.id, rotated.id]) == [card.id]
        alice.revoke_card(rotated.id)
        assert bob.search_cards("alice")[0].id == card.id


@pytest.mark.parametrize("sqlite", [False, True], ids=["memory", "sqlite"])
def test_lone_surrogates_are_malformed_json_and_change_nothing(
    app_creds: VirgilAppCredentials, tmp_path: Path, sqlite: bool
) -> None:
    """JSON escapes of lone UTF-16 surrogates are not text: a 400, in memory and in SQLite."""
    db = tmp_path / "cards.sqlite" if sqlite else None
    service = MockCardsService(
        app_creds.app_id, app_creds.app_key_id, app_creds.app_public_key, db_path=db
    )
    headers = {
        "Authorization": "Virgil " + generate_virgil_jwt(app_creds, "alice"),
        "Content-Type": "application/json",
    }
    entry = b'"path": "p", "key": "k", "identities": ["alice"], "meta": "", "value": ""'
    bodies = [
        ("/card/v5/actions/search", b'{"identities": ["\\ud800"]}'),
        ("/keyknox/v2/push", b'{"root": "\\udc00", ' + entry + b"}"),
        ("/keyknox/v2/push", b'{"root": "r", "path": "p", "key": "k", "identities": ["\\ud800"]}'),
        ("/keyknox/v2/pull", b'{"root": "r", "path": "p", "key": "k", "identity": "\\ud800"}'),
        ("/keyknox/v2/reset", b'{"root": "\\ud800"}'),
    ]
    with TestClient(service.app) as http:
        for path, body in bodies:
            resp = http.post(path, content=body, headers=headers)
            assert resp.status_code == 400, (path, resp.text)
            assert resp.json()["code"] == 40000 and isinstance(resp.json()["message"], str)
    assert service.store.kk_list("alice") == []
    service.close()


@pytest.mark.parametrize("kind", ["missing-directory", "not-a-database"])
def test_unusable_database_is_a_configuration_error(
    app_creds: VirgilAppCredentials, tmp_path: Path, kind: str
) -> None:
    from twilio_e2ee.errors import ConfigurationError

    db = tmp_path / "nowhere" / "cards.sqlite"
    if kind == "not-a-database":
        db = tmp_path / "cards.sqlite"
        db.write_bytes(b"this is not SQLite " * 64)
    with pytest.raises(ConfigurationError, match="cannot open"):
        MockCardsService(
            app_creds.app_id, app_creds.app_key_id, app_creds.app_public_key, db_path=db
        )
