"""Property-based HTTP fuzzing of the mock Virgil Cards v5 + Keyknox v2 service.

Random requests to every endpoint: malformed JSON, wrong types, bad base64, mutated card models
and content snapshots, random Keyknox places and hashes, forged / expired / foreign JWTs,
oversized and non-UTF-8 bodies, wrong methods. Properties: never a 5xx; every error body is
exactly Virgil's ``{"code": int, "message": str}``; a refused request changes no stored state.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mock_services.cards import MockCardsService
from mock_services.cards.app import MAX_BODY_BYTES
from mock_services.cards.store import MemoryStore
from tests.fuzz_http import (
    GARBAGE_BYTES,
    FuzzRequest,
    fuzz_settings,
    json_body,
    json_values,
    segment,
    weighted,
)
from twilio_e2ee.cards import create_raw_card
from twilio_e2ee.credentials import VirgilAppCredentials, generate_development_credentials
from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.crypto.keys import PrivateKey
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt


@dataclass(repr=False)
class Harness:
    mock: MockCardsService
    client: TestClient
    creds: VirgilAppCredentials
    alice_key: PrivateKey
    alice_card: str
    kk_hash: str
    auth_headers: list[str]


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    creds = generate_development_credentials().virgil
    mock = MockCardsService(creds.app_id, creds.app_key_id, creds.app_public_key)
    stranger = generate_development_credentials().virgil
    forged = replace(stranger, app_id=creds.app_id, app_key_id=creds.app_key_id)
    alice = "Virgil " + generate_virgil_jwt(creds, "alice")
    auth_headers = (
        [alice] * 5
        + [
            "Virgil " + generate_virgil_jwt(creds, "bob"),
            "Virgil " + generate_virgil_jwt(forged, "alice"),  # right kid, wrong key
            "Virgil " + generate_virgil_jwt(stranger, "alice"),  # another application
            "Virgil " + generate_virgil_jwt(creds, "alice", ttl=60, now=time.time() - 3600),
            "Virgil "
            + generate_virgil_jwt(creds, "alice", now=time.time() + 3600),  # not yet valid
            "Virgil not.a.jwt",
            "Virgil ",
            "Bearer " + alice[7:],
            "",
        ]
    )
    key = generate_key_pair().private_key
    with TestClient(mock.app, raise_server_exceptions=False) as client:
        headers = {"Authorization": alice}
        card = client.post(
            "/card/v5", json=create_raw_card(key, "alice").to_json(), headers=headers
        )
        assert card.status_code == 200, card.text
        kk = client.post(
            "/keyknox/v2/push",
            json={"root": "e3kit", "path": "backup", "key": "alice", "identities": ["alice", "bob"],
                  "meta": "", "value": base64.b64encode(b"secret").decode()},
            headers=headers,
        )  # fmt: skip
        assert kk.status_code == 200, kk.text
        card_id = mock.store.cards_of("alice")[0].id
        yield Harness(
            mock, client, creds, key, card_id, kk.headers["Virgil-Keyknox-Hash"], auth_headers
        )
    mock.close()


def snapshot(mock: MockCardsService) -> Any:
    store = mock.store
    assert isinstance(store, MemoryStore)
    with store.lock:
        return dict(store._cards), dict(store._kk), dict(store._settings)


# --- the request strategy ----------------------------------------------------------------------

b64 = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
bad_b64 = st.sampled_from(["!!!", "abc", "a===", "====", "YQ", "\u00e9t\u00e9", " YWJj"])
names = st.sampled_from(["e3kit", "backup", "alice", "bob", "", " ", "a\x00b", "x" * 1025, "\n"])
values: st.SearchStrategy[Any] = names | b64 | bad_b64 | json_values


def card_models(h: Harness) -> st.SearchStrategy[Any]:
    """Raw signed models: valid, of someone else, mutated, or rebuilt from random content."""

    @st.composite
    def model(draw: st.DrawFn) -> Any:
        identity = draw(st.sampled_from(["alice", "alice", "bob"]))
        key = h.alice_key if draw(st.booleans()) else generate_key_pair().private_key
        previous = draw(st.none() | st.just(h.alice_card) | st.just("0" * 64))
        raw: dict[str, Any] = create_raw_card(key, identity, previous_card_id=previous).to_json()
        how = draw(st.sampled_from(["as-is", "snapshot", "content", "signatures", "field"]))
        if how == "snapshot":
            raw["content_snapshot"] = draw(b64 | bad_b64 | json_values)
        elif how == "content":
            content = json.loads(base64.b64decode(raw["content_snapshot"]))
            field = draw(st.sampled_from(sorted(content)))
            content[field] = draw(st.sampled_from(["", "alice\n", "5.0", "x" * 2000]) | json_values)
            raw["content_snapshot"] = base64.b64encode(json.dumps(content).encode()).decode()
        elif how == "signatures":
            sig = {"signer": draw(st.sampled_from(["self", "virgil", "x"]) | json_values)}
            sig |= draw(st.dictionaries(st.sampled_from(["signature", "snapshot"]), values))
            raw["signatures"] = draw(st.sampled_from([[sig], [], sig, None]))
        elif how == "field":
            raw[draw(st.sampled_from(["content_snapshot", "signatures", "extra"]))] = draw(values)
        return raw

    return model()


def keyknox_bodies() -> st.SearchStrategy[Any]:
    fields = st.sampled_from(["root", "path", "key", "identity", "identities", "meta", "value"])
    good = st.fixed_dictionaries(
        {"root": st.just("e3kit"), "path": st.just("backup"), "key": st.just("alice"),
         "identities": st.just(["alice"]), "meta": st.just(""), "value": b64}
    )  # fmt: skip
    return st.one_of(
        st.tuples(good, st.dictionaries(fields, values | st.lists(names), max_size=3)).map(
            lambda t: {**t[0], **t[1]}
        ),
        st.dictionaries(fields, values | st.lists(values, max_size=3), max_size=7),
    )


def list_bodies(h: Harness, field: str) -> st.SearchStrategy[Any]:
    """Mostly well-formed ``{field: [...]}`` (so handlers run), else random keys and values."""
    good = st.sampled_from([h.alice_card, "alice", "bob", "carol", "0" * 64])
    item = good | st.sampled_from(["", h.alice_card.upper()]) | json_values
    return weighted(
        (3, st.fixed_dictionaries({field: st.lists(good, min_size=1, max_size=4)})),
        (1, st.fixed_dictionaries({field: st.lists(item, max_size=4)})),
        (
            1,
            st.dictionaries(
                st.sampled_from(["identities", "card_ids", "other"]),
                st.lists(item, max_size=4) | json_values,
                max_size=2,
            ),
        ),
    )


@st.composite
def requests(draw: st.DrawFn, h: Harness) -> FuzzRequest:
    card_ref = st.sampled_from([h.alice_card, "0" * 64, h.alice_card.upper()]) | segment
    route = draw(
        st.sampled_from(
            ["/card/v5", "/card/v5/actions/search", "/card/v5/actions/updated",
             "/card/v5/actions/revoke/{id}", "/card/v5/{id}", "/keyknox/v2/push",
             "/keyknox/v2/pull", "/keyknox/v2/keys", "/keyknox/v2/reset", "/keyknox/v1/{id}"]
        )
    )  # fmt: skip
    path = route.replace("{id}", draw(card_ref))
    usual = "GET" if route == "/card/v5/{id}" else "POST"
    method = draw(st.sampled_from([usual] * 6 + ["GET", "POST", "PUT", "DELETE"]))
    headers = {"Content-Type": "application/json"}
    auth = draw(st.sampled_from(h.auth_headers))
    if auth:
        headers["Authorization"] = auth
    if route.startswith("/keyknox") and draw(st.booleans()):
        headers["Virgil-Keyknox-Previous-Hash"] = draw(
            st.sampled_from([h.kk_hash, "", "AAAA"]) | st.text(alphabet="abcXYZ+/=", max_size=44)
        )
    kind = draw(st.sampled_from(["typed"] * 6 + ["json", "garbage", "huge", "empty"]))
    if kind == "typed":
        if route == "/card/v5":
            body = draw(card_models(h))
        elif route.startswith("/keyknox"):
            body = draw(keyknox_bodies())
        else:
            body = draw(list_bodies(h, "card_ids" if route.endswith("updated") else "identities"))
        content = json_body(body)
    elif kind == "json":
        content = json_body(draw(json_values))
    elif kind == "garbage":
        content = draw(GARBAGE_BYTES)
    elif kind == "huge":
        content = b'{"identities": ["' + b"a" * MAX_BODY_BYTES + b'"]}'
    else:
        content = b""
    return FuzzRequest(method, path, headers, content)


# --- the property ------------------------------------------------------------------------------


def check_response(req: FuzzRequest, status: int, text: str) -> None:
    assert status < 500, f"{req!r} -> {status}: {text[:300]}"
    if status >= 400:
        body = json.loads(text)
        assert isinstance(body, dict) and body.keys() == {"code", "message"}, body
        assert type(body["code"]) is int and isinstance(body["message"], str), body
    elif text:
        json.loads(text)


def test_bad_input_never_500s_and_refusals_change_nothing(harness: Harness) -> None:
    seen: dict[str, int] = {}

    @fuzz_settings(800)
    @given(req=requests(harness))
    def prop(req: FuzzRequest) -> None:
        before = snapshot(harness.mock)
        response = harness.client.request(
            req.method, req.path, headers=req.headers, content=req.content
        )
        status = response.status_code
        seen[f"{status // 100}xx"] = seen.get(f"{status // 100}xx", 0) + 1
        check_response(req, status, response.text)
        if status >= 400:
            assert snapshot(harness.mock) == before, f"refused {req!r} changed the store"

    prop()
    print(f"mock Cards/Keyknox fuzz outcomes: {seen}")
    assert seen.get("4xx", 0) > 0 and seen.get("2xx", 0) > 0, seen
