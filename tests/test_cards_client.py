"""CardsClient / AsyncCardsClient against an in-test Cards v5 fake on httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_e2ee.cards import (
    AsyncCardsClient,
    Card,
    CardQueryError,
    CardResponseMismatchError,
    CardsAuthenticationError,
    CardsBadRequestError,
    CardsClient,
    CardSignatureInvalidError,
    CardsNotFoundError,
    CardsServiceUnavailableError,
    CardVerifier,
    InvalidServiceResponseError,
    MalformedCardError,
    RawSignedModel,
    create_raw_card,
)
from twilio_e2ee.cards import protocol as p
from twilio_e2ee.cards.protocol import CardsRequest, search_requests
from twilio_e2ee.crypto import PrivateKey, generate_key_pair
from twilio_e2ee.errors import ConfigurationError, E2EEError
from twilio_e2ee.tokens.providers import AsyncCachingJwtProvider, CachingJwtProvider


def jwt_for(identity: str, n: int = 0) -> str:
    def seg(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"sub": f"identity-{identity}", "exp": 4102444800, "n": n}  # year 2100
    return f"{seg({'alg': 'VEDS512'})}.{seg(claims)}.c2ln"


class FakeCards:
    """Enough of Cards v5 to exercise the client; tweak ``mode`` to misbehave."""

    def __init__(self, service_key: PrivateKey) -> None:
        self.key = service_key
        self.cards: dict[str, dict[str, Any]] = {}  # id -> {"model", "identity", "outdated"}
        self.requests: list[httpx.Request] = []
        self.expired_tokens: set[str] = set()
        self.mode: str = "ok"

    def publish(self, model: RawSignedModel, identity: str) -> RawSignedModel:
        signed = model.add_signature("virgil", self.key)
        content = json.loads(model.content_snapshot)
        prev = content.get("previous_card_id")
        if prev in self.cards:
            self.cards[prev]["outdated"] = True
        self.cards[model.card_id] = {"model": signed, "identity": identity, "outdated": False}
        return signed

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Virgil "):
            return httpx.Response(401, json={"code": 20300, "message": "no token"})
        token = auth[len("Virgil ") :]
        if token in self.expired_tokens:
            return httpx.Response(401, json={"code": 20304, "message": "token expired"})
        if self.mode == "500":
            return httpx.Response(503, text="down")
        path = request.url.path
        body = json.loads(request.content) if request.content else None
        if request.method == "POST" and path == "/card/v5":
            model = RawSignedModel.from_json(body)
            signed = self.publish(model, "x")
            if self.mode == "alter":
                signed = RawSignedModel(model.content_snapshot + b" ", signed.signatures)
            return httpx.Response(201, json=signed.to_json())
        if path == "/card/v5/actions/search":
            idents = body["identities"]
            if len(idents) > 50:
                return httpx.Response(400, json={"code": 30001, "message": "too many"})
            found = [
                c["model"].to_json()
                for c in self.cards.values()
                if json.loads(c["model"].content_snapshot)["identity"] in idents
                or self.mode == "leak"
            ]
            return httpx.Response(200, json=found or None)
        if path == "/card/v5/actions/updated":
            return httpx.Response(
                200, json=[i for i in body["card_ids"] if self.cards.get(i, {}).get("outdated")]
            )
        if m := re.fullmatch(r"/card/v5/actions/revoke/([0-9a-f]{64})", path):
            if m.group(1) not in self.cards:
                return httpx.Response(404, json={"code": 10001, "message": "card not found"})
            self.cards[m.group(1)]["outdated"] = True
            return httpx.Response(200)
        if m := re.fullmatch(r"/card/v5/([0-9a-f]{64})", path):
            card_id = m.group(1)
            if self.mode == "swap" and self.cards:
                card_id = next(iter(self.cards))
            if card_id not in self.cards:
                return httpx.Response(404, json={"code": 10001, "message": "card not found"})
            entry = self.cards[card_id]
            headers = {"X-Virgil-Is-Superseeded": "true"} if entry["outdated"] else {}
            return httpx.Response(200, json=entry["model"].to_json(), headers=headers)
        return httpx.Response(404, json={"code": 10000, "message": "no route"})


SERVICE = generate_key_pair().private_key


def make_client(fake: FakeCards, token: Callable[[], str] | None = None, **kw: Any) -> CardsClient:
    http = httpx.Client(transport=httpx.MockTransport(fake))
    return CardsClient(
        token or (lambda: jwt_for("alice")),
        base_url="http://cards.test",
        service_public_key=SERVICE.public_key,
        http_client=http,
        **kw,
    )


def test_publish_search_get_revoke_outdated() -> None:
    fake = FakeCards(SERVICE)
    client = make_client(fake)
    key1 = generate_key_pair().private_key
    card1 = client.publish_card(key1)
    assert card1.identity == "alice" and card1.raw.signature("virgil") is not None
    req = fake.requests[0]
    assert req.headers["Authorization"].startswith("Virgil ey")
    agent = req.headers["Virgil-Agent"].split(";")
    assert agent[:2] == ["twilio_e2ee", "python"] and len(agent) == 4
    card2 = client.publish_card(generate_key_pair().private_key, previous_card_id=card1.id)
    (head,) = client.search_cards("alice")
    assert head == card2 and head.previous_card == card1 and head.previous_card.is_outdated
    got = client.get_card(card1.id)
    assert got == card1 and got.is_outdated
    assert not client.get_card(card2.id).is_outdated
    assert client.get_outdated([card1.id, card2.id]) == [card1.id]
    client.revoke_card(card2.id)
    with pytest.raises(CardsNotFoundError) as info:
        client.revoke_card("ab" * 32)
    assert info.value.status == 404 and info.value.code == 10001
    assert info.value.service_message == "card not found"
    assert client.search_cards(["nobody"]) == []


def test_search_chunks_of_50() -> None:
    idents = [f"user{i}" for i in range(120)] + ["user0"]
    reqs = search_requests(idents)
    assert [len(r.json["identities"]) for r in reqs] == [50, 50, 20]
    fake = FakeCards(SERVICE)
    client = make_client(fake)
    client.publish_card(generate_key_pair().private_key)
    assert client.search_cards(idents) == []
    assert len(fake.requests) == 4
    with pytest.raises(CardQueryError):
        client.search_cards([])
    with pytest.raises(CardQueryError):
        client.search_cards(["ok", ""])


@pytest.mark.parametrize("bad", [5, None, ["\ud800"], [b"alice"], ["ok", 7]])
def test_bad_identity_arguments_are_card_query_errors(bad: Any) -> None:
    fake = FakeCards(SERVICE)
    client = make_client(fake)
    with pytest.raises(CardQueryError):
        client.search_cards(bad)
    assert fake.requests == []  # refused before any request


@pytest.mark.parametrize("bad", [5, None, [], [7], ["0" * 63]])
def test_bad_card_id_arguments_are_card_query_errors(bad: Any) -> None:
    with pytest.raises(CardQueryError):
        p.outdated_request(bad)


def test_expired_token_retried_once_with_forced_reload() -> None:
    fake = FakeCards(SERVICE)
    issued: list[str] = []

    def cb() -> str:
        issued.append(jwt_for("alice", len(issued)))
        return issued[-1]

    client = make_client(fake, cb)
    client.tokens.get_token()
    fake.expired_tokens.add(issued[0])
    assert client.search_cards("alice") == []
    assert len(issued) == 2 and len(fake.requests) == 2
    # Refused again after the retry → typed error, no loop.
    fake.expired_tokens.add(issued[1])
    fake.expired_tokens.add(jwt_for("alice", 2))
    client2 = make_client(fake, lambda: issued[0])
    with pytest.raises(CardsAuthenticationError) as info:
        client2.search_cards("alice")
    assert info.value.code == 20304 and info.value.status == 401


def test_service_errors_are_typed() -> None:
    fake = FakeCards(SERVICE)
    client = make_client(fake)
    too_many = CardsRequest("POST", "/card/v5/actions/search", {"identities": ["x"] * 51})
    with pytest.raises(CardsBadRequestError) as info:
        client._send(too_many)
    assert info.value.code == 30001
    fake.mode = "500"
    with pytest.raises(CardsServiceUnavailableError) as err:
        client.search_cards("a")
    assert err.value.status == 503 and err.value.code is None

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    broken = CardsClient(
        lambda: jwt_for("a"),
        base_url="http://cards.test",
        service_public_key=SERVICE.public_key,
        http_client=httpx.Client(transport=httpx.MockTransport(refuse)),
    )
    with pytest.raises(CardsServiceUnavailableError, match="unreachable"):
        broken.search_cards("a")


def test_client_side_checks() -> None:
    fake = FakeCards(SERVICE)
    client = make_client(fake)
    card = client.publish_card(generate_key_pair().private_key)
    other = make_client(fake, lambda: jwt_for("bob")).publish_card(generate_key_pair().private_key)
    fake.mode = "leak"  # search returns cards of identities not asked for
    with pytest.raises(CardResponseMismatchError, match="not asked"):
        client.search_cards("alice")
    fake.mode = "swap"  # get returns another card
    with pytest.raises(CardResponseMismatchError, match="asked for card"):
        client.get_card(other.id)
    fake.mode = "alter"  # publish returns a different snapshot
    with pytest.raises(CardResponseMismatchError, match="snapshot"):
        client.publish_card(generate_key_pair().private_key)
    assert card.id in fake.cards


def test_cards_from_an_unknown_service_key_are_refused() -> None:
    fake = FakeCards(generate_key_pair().private_key)  # signs with a key the client doesn't trust
    client = make_client(fake)
    with pytest.raises(CardSignatureInvalidError):
        client.publish_card(generate_key_pair().private_key)
    # The default verifier trusts only Virgil's production key, whatever the URL.
    default = CardsClient(
        lambda: jwt_for("alice"),
        base_url="http://cards.test",
        http_client=httpx.Client(transport=httpx.MockTransport(FakeCards(SERVICE))),
    )
    with pytest.raises(CardSignatureInvalidError):
        default.publish_card(generate_key_pair().private_key)


def test_malformed_answers() -> None:
    answers = iter(
        [
            httpx.Response(200, text="not json"),
            httpx.Response(200, json={"a": 1}),
            httpx.Response(200, json=[{"content_snapshot": "!!"}]),
            httpx.Response(200, json=["x"]),
        ]
    )
    client = CardsClient(
        lambda: jwt_for("a"),
        base_url="http://cards.test",
        service_public_key=SERVICE.public_key,
        http_client=httpx.Client(transport=httpx.MockTransport(lambda r: next(answers))),
    )
    expected = [
        InvalidServiceResponseError,
        InvalidServiceResponseError,
        MalformedCardError,
        InvalidServiceResponseError,
    ]
    for error in expected:
        with pytest.raises(error):
            client.search_cards("a")
    with pytest.raises(CardQueryError):
        client.get_card("../../etc/passwd")


def test_async_client() -> None:
    fake = FakeCards(SERVICE)
    issued: list[str] = []

    async def cb() -> str:
        issued.append(jwt_for("alice", len(issued)))
        return issued[-1]

    async def main() -> list[Card]:
        async with AsyncCardsClient(
            cb,
            base_url="http://cards.test/",
            service_public_key=SERVICE.public_key,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(fake)),
        ) as client:
            first = await client.publish_card(generate_key_pair().private_key)
            fake.expired_tokens.add(issued[-1])
            second = await client.publish_raw_card(
                create_raw_card(generate_key_pair().private_key, "alice", previous_card_id=first.id)
            )
            assert (await client.get_card(first.id)).is_outdated
            assert await client.get_outdated([first.id]) == [first.id]
            await client.revoke_card(second.id)
            return await client.search_cards(["alice"])

    (head,) = asyncio.run(main())
    assert head.previous_card is not None and len(issued) == 2


def test_token_sources_and_configuration_errors() -> None:
    class Provider:
        def __init__(self) -> None:
            self.calls: list[bool] = []

        def get_token(self, force_reload: bool = False) -> str:
            self.calls.append(force_reload)
            return jwt_for("alice", len(self.calls))

    fake = FakeCards(SERVICE)
    provider = Provider()
    client = make_client(fake)
    client.tokens = provider  # any object with get_token(force_reload=...) works
    fake.expired_tokens.add(jwt_for("alice", 1))
    assert client.search_cards("alice") == []
    assert provider.calls == [False, True]
    assert CardsClient(provider).tokens is provider

    async def acb() -> str:
        return jwt_for("alice")

    with pytest.raises(ConfigurationError):
        CardsClient(AsyncCachingJwtProvider(acb))
    with pytest.raises(ConfigurationError):
        AsyncCardsClient(CachingJwtProvider(lambda: jwt_for("a")))
    with pytest.raises(ConfigurationError):
        CardsClient(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        CardsClient(lambda: jwt_for("a"), base_url="ftp://cards.test")


_bodies = st.one_of(
    st.binary(max_size=300),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=200, deadline=None)
@given(_bodies, st.integers(min_value=100, max_value=599))
def test_fuzz_response_parsers_raise_only_package_errors(body: bytes, status: int) -> None:
    verifier = CardVerifier(SERVICE.public_key)
    sent = create_raw_card(generate_key_pair().private_key, "a", created_at=1)
    calls: list[Callable[[], object]] = [
        lambda: p.raise_for_error(status, body),
        lambda: p.parse_publish_response(sent, body, verifier),
        lambda: p.parse_search_response(["a"], body, verifier),
        lambda: p.parse_get_response("ab" * 32, {}, body, verifier),
        lambda: p.parse_outdated_response(["ab" * 32], body),
    ]
    for call in calls:
        with contextlib.suppress(E2EEError):
            call()
