"""The mock Keyknox v2: hash handshake (50010), the identities access list (50017/50021), keys,
reset, and the package's KeyknoxClient against it."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_services.cards import MockCardsService
from twilio_e2ee.credentials import VirgilAppCredentials, generate_development_credentials
from twilio_e2ee.keyknox.client import KeyknoxClient
from twilio_e2ee.keyknox.errors import KeyknoxEntryNotFoundError, KeyknoxHashMismatchError
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt

HASH = "Virgil-Keyknox-Hash"
PREV = "Virgil-Keyknox-Previous-Hash"
B64 = base64.b64encode


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
def auth(app_creds: VirgilAppCredentials) -> Callable[..., dict[str, str]]:
    def make(identity: str, previous: str | None = None) -> dict[str, str]:
        headers = {"Authorization": "Virgil " + generate_virgil_jwt(app_creds, identity)}
        if previous is not None:
            headers[PREV] = previous
        return headers

    return make


def _entry(
    data: bytes = b"secret", identities: list[str] | None = None, **kw: Any
) -> dict[str, Any]:
    body = {
        "root": "e3kit",
        "path": "backup",
        "key": "main",
        "identities": ["alice"] if identities is None else identities,
        "meta": B64(b"meta").decode(),
        "value": B64(data).decode(),
    }
    body.update(kw)
    return body


WHERE = {"root": "e3kit", "path": "backup", "key": "main"}


def test_push_pull_and_hash_handshake(http: TestClient, auth: Any) -> None:
    empty = http.post("/keyknox/v2/pull", json=WHERE, headers=auth("alice"))
    assert empty.status_code == 200 and HASH not in empty.headers
    assert empty.json()["value"] == "" and empty.json()["meta"] == ""
    first = http.post("/keyknox/v2/push", json=_entry(b"v1"), headers=auth("alice"))
    assert first.status_code == 200, first.text
    h1 = first.headers[HASH]
    assert first.json() == {
        "owner": "alice",
        **WHERE,
        "identities": ["alice"],
        "meta": B64(b"meta").decode(),
        "value": B64(b"v1").decode(),
    }
    pulled = http.post("/keyknox/v2/pull", json=WHERE, headers=auth("alice"))
    assert pulled.headers[HASH] == h1 and pulled.json()["value"] == B64(b"v1").decode()
    # overwriting needs the current hash
    for previous in (None, "", "c3RhbGU="):
        resp = http.post("/keyknox/v2/push", json=_entry(b"v2"), headers=auth("alice", previous))
        assert resp.status_code == 409 and resp.json()["code"] == 50010
    assert http.post("/keyknox/v2/pull", json=WHERE, headers=auth("alice")).headers[HASH] == h1
    second = http.post("/keyknox/v2/push", json=_entry(b"v2"), headers=auth("alice", h1))
    assert second.status_code == 200 and second.headers[HASH] != h1
    # the old hash is stale now, even for the same content again
    stale = http.post("/keyknox/v2/push", json=_entry(b"v1"), headers=auth("alice", h1))
    assert stale.status_code == 409 and stale.json()["code"] == 50010
    third = http.post(
        "/keyknox/v2/push", json=_entry(b"v1"), headers=auth("alice", second.headers[HASH])
    )
    assert third.status_code == 200 and third.headers[HASH] not in (h1, second.headers[HASH])


def test_identities_access_list(http: TestClient, auth: Any) -> None:
    shared = _entry(b"ticket", identities=["alice", "bob"], root="group-sessions", path="s1")
    shared["key"] = "0"
    assert http.post("/keyknox/v2/push", json=shared, headers=auth("alice")).status_code == 200
    where = {"root": "group-sessions", "path": "s1", "key": "0", "identity": "alice"}
    bob = http.post("/keyknox/v2/pull", json=where, headers=auth("bob"))
    assert bob.status_code == 200 and bob.json()["owner"] == "alice"
    carol = http.post("/keyknox/v2/pull", json=where, headers=auth("carol"))
    assert carol.status_code == 404 and carol.json()["code"] == 50017
    nothing = http.post("/keyknox/v2/pull", json={**where, "key": "9"}, headers=auth("bob"))
    assert nothing.status_code == 404 and nothing.json()["code"] == 50017
    # bob's own namespace is separate: his pull of the same place is empty
    own = http.post("/keyknox/v2/pull", json={**where, "identity": "bob"}, headers=auth("bob"))
    assert own.status_code == 200 and own.json()["value"] == ""
    keys = {"root": "group-sessions", "path": "s1", "identity": "alice"}
    assert http.post("/keyknox/v2/keys", json=keys, headers=auth("bob")).json() == ["0"]
    assert http.post("/keyknox/v2/keys", json=keys, headers=auth("carol")).json() == []
    # removing bob from the list (E3Kit's removeRecipient) keeps the hash
    before = http.post("/keyknox/v2/pull", json=where, headers=auth("alice")).headers[HASH]
    reset = {"root": "group-sessions", "path": "s1", "identity": "bob"}
    assert http.post("/keyknox/v2/reset", json=reset, headers=auth("alice")).status_code == 200
    assert http.post("/keyknox/v2/pull", json=where, headers=auth("bob")).status_code == 404
    after = http.post("/keyknox/v2/pull", json=where, headers=auth("alice"))
    assert after.headers[HASH] == before and after.json()["identities"] == ["alice"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_entry(identities=[]), 50021),
        ({k: v for k, v in _entry().items() if k != "identities"}, 50021),
        (_entry(identities=[5]), 50021),
        (_entry(value="***"), 50000),
        (_entry(meta=None), 50000),
        (_entry(root=""), 50000),
        (_entry(key="a\nb"), 50000),
        (["not", "an", "object"], 40000),
    ],
)
def test_bad_pushes_change_nothing(http: TestClient, auth: Any, body: Any, code: int) -> None:
    http.post("/keyknox/v2/push", json=_entry(b"keep"), headers=auth("alice"))
    before = http.post("/keyknox/v2/pull", json=WHERE, headers=auth("alice"))
    resp = http.post("/keyknox/v2/push", json=body, headers=auth("alice", before.headers[HASH]))
    assert resp.status_code in (400, 413) and resp.json()["code"] == code, resp.text
    after = http.post("/keyknox/v2/pull", json=WHERE, headers=auth("alice"))
    assert after.json() == before.json() and after.headers[HASH] == before.headers[HASH]


def test_reset_and_keys(http: TestClient, auth: Any) -> None:
    for key in ("a", "b"):
        http.post("/keyknox/v2/push", json=_entry(key=key), headers=auth("alice"))
    assert http.post("/keyknox/v2/keys", json={}, headers=auth("alice")).json() == ["a", "b"]
    one = {"root": "e3kit", "path": "backup", "key": "a"}
    assert http.post("/keyknox/v2/reset", json=one, headers=auth("alice")).status_code == 200
    assert http.post("/keyknox/v2/keys", json={}, headers=auth("alice")).json() == ["b"]
    # nothing to reset is not an error; another user's reset touches only their namespace
    assert http.post("/keyknox/v2/reset", json={}, headers=auth("mallory")).status_code == 200
    assert http.post("/keyknox/v2/keys", json={}, headers=auth("alice")).json() == ["b"]
    assert http.post("/keyknox/v2/reset", json={}, headers=auth("alice")).status_code == 200
    assert http.post("/keyknox/v2/keys", json={}, headers=auth("alice")).json() == []
    # after a reset, an old hash no longer applies
    pushed = http.post("/keyknox/v2/push", json=_entry(), headers=auth("alice"))
    http.post("/keyknox/v2/reset", json={}, headers=auth("alice"))
    resp = http.post("/keyknox/v2/push", json=_entry(), headers=auth("alice", pushed.headers[HASH]))
    assert resp.status_code == 409 and resp.json()["code"] == 50010


def test_keyknox_requires_a_valid_token(
    http: TestClient, service: MockCardsService, app_creds: VirgilAppCredentials
) -> None:
    resp = http.post("/keyknox/v2/push", json=_entry())
    assert resp.status_code == 401 and resp.json()["code"] == 20300
    old = generate_virgil_jwt(app_creds, "alice", ttl=10, now=0)
    resp = http.post("/keyknox/v2/pull", json=WHERE, headers={"Authorization": "Virgil " + old})
    assert resp.status_code == 401 and resp.json()["code"] == 20304
    entries = service.journal.filter(service="keyknox")
    assert [e.status for e in entries] == [401, 401] and entries[0].request["key"] == "main"


def test_package_keyknox_client_against_the_mock(
    service: MockCardsService, app_creds: VirgilAppCredentials
) -> None:
    class Tokens:
        def __init__(self, identity: str) -> None:
            self.identity = identity

        def get_token(self, *, force_reload: bool = False) -> str:
            return generate_virgil_jwt(app_creds, self.identity)

    with TestClient(service.app, base_url="http://testserver") as http_client:
        alice = KeyknoxClient(Tokens("alice"), "http://testserver", http_client=http_client)
        bob = KeyknoxClient(Tokens("bob"), "http://testserver", http_client=http_client)
        assert alice.pull(root="r", path="p", key="k").is_empty
        v1 = alice.push(
            root="r", path="p", key="k", identities=["alice", "bob"], meta=b"m", value=b"v"
        )
        assert v1.keyknox_hash and v1.value == b"v"
        with pytest.raises(KeyknoxHashMismatchError):
            alice.push(root="r", path="p", key="k", identities=["alice"], meta=b"m", value=b"x")
        v2 = alice.push(
            root="r",
            path="p",
            key="k",
            identities=["alice"],
            meta=b"m",
            value=b"x",
            previous_hash=v1.keyknox_hash,
        )
        assert v2.value == b"x"
        with pytest.raises(KeyknoxEntryNotFoundError):
            bob.pull(root="r", path="p", key="k", identity="alice")
        assert alice.keys(root="r", path="p") == ["k"]
        alice.reset(root="r", path="p", key="k")
        assert alice.pull(root="r", path="p", key="k").is_empty
