"""Cards client retries (httpx.MockTransport): backoff + Retry-After on reads, careful writes.

Reads (search, get, outdated) are retried on 429/5xx/transport errors. Publish and revoke are
re-sent blindly only after a 429 (refused, not applied); after an uncertain failure (5xx, lost
answer) the client first looks: publish searches the identity's cards for the same snapshot,
revoke fetches the card and stops if it is already outdated. Sleeps are recorded, not slept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from tests.test_cards_client import SERVICE, FakeCards, jwt_for
from twilio_e2ee.cards import (
    AsyncCardsClient,
    CardsBadRequestError,
    CardsClient,
    CardsServiceUnavailableError,
)
from twilio_e2ee.cards import protocol as p
from twilio_e2ee.cards.protocol import CardsRetryPolicy
from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.errors import ConfigurationError

PUBLISH = ("POST", "/card/v5")
SEARCH = ("POST", "/card/v5/actions/search")
UPDATED = ("POST", "/card/v5/actions/updated")


class Faulty:
    """FakeCards behind a script of faults: ``faults[(method, path)]`` is a list of kinds.

    Kinds: ``"429"`` (Retry-After 3), ``"503"`` (refused before applying), ``"502-after"``
    (applied, then a gateway error), ``"drop-after"`` (applied, then the connection breaks).
    A path of ``"get"`` / ``"revoke"`` matches those routes whatever the id.
    """

    def __init__(self) -> None:
        self.fake = FakeCards(SERVICE)
        self.faults: dict[tuple[str, str], list[str]] = {}
        self.log: list[tuple[str, str, int]] = []

    def _route(self, request: httpx.Request) -> tuple[str, str]:
        path = request.url.path
        if path.startswith("/card/v5/actions/revoke/"):
            return (request.method, "revoke")
        if request.method == "GET" and path.startswith("/card/v5/"):
            return ("GET", "get")
        return (request.method, path)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = self._route(request)
        pending = self.faults.get(route)
        kind = pending.pop(0) if pending else None
        if kind == "429":
            answer = httpx.Response(429, headers={"Retry-After": "3"}, json={"code": 1})
        elif kind == "503":
            answer = httpx.Response(503, text="unavailable")
        else:
            answer = self.fake(request)
            if kind == "502-after":
                answer = httpx.Response(502, text="bad gateway")
            elif kind == "drop-after":
                self.log.append((*route, 0))
                raise httpx.RemoteProtocolError("Server disconnected", request=request)
        self.log.append((*route, answer.status_code))
        return answer

    def count(self, route: tuple[str, str]) -> int:
        return sum(1 for m, r, _ in self.log if (m, r) == route)


def client_for(faulty: Faulty, slept: list[float], **kw: object) -> CardsClient:
    return CardsClient(
        lambda: jwt_for("alice"),
        base_url="http://cards.test",
        service_public_key=SERVICE.public_key,
        http_client=httpx.Client(transport=httpx.MockTransport(faulty)),
        sleep=slept.append,
        **kw,  # type: ignore[arg-type]
    )


def test_reads_are_retried_honouring_retry_after_then_backoff() -> None:
    faulty, slept = Faulty(), []
    client = client_for(faulty, slept, retry_policy=CardsRetryPolicy(max_attempts=4))
    card = client.publish_card(generate_key_pair().private_key)
    faulty.faults[SEARCH] = ["429", "503", "503"]
    assert [c.id for c in client.search_cards("alice")] == [card.id]
    assert faulty.count(SEARCH) == 4
    policy = CardsRetryPolicy(max_attempts=4)
    assert slept == [3.0, policy.base_delay * 2, policy.base_delay * 4]  # Retry-After, backoff
    slept.clear()
    faulty.faults[("GET", "get")] = ["502-after"]
    assert client.get_card(card.id).id == card.id and len(slept) == 1
    faulty.faults[UPDATED] = ["429"]
    assert client.get_outdated([card.id]) == []


def test_retries_are_bounded_and_4xx_is_not_retried() -> None:
    faulty, slept = Faulty(), []
    client = client_for(faulty, slept, retry_policy=CardsRetryPolicy(max_attempts=3))
    faulty.faults[SEARCH] = ["503"] * 5
    with pytest.raises(CardsServiceUnavailableError) as info:
        client.search_cards("alice")
    assert info.value.status == 503 and faulty.count(SEARCH) == 3 and len(slept) == 2
    faulty.faults.clear()
    too_many = p.CardsRequest("POST", "/card/v5/actions/search", {"identities": ["x"] * 51})
    with pytest.raises(CardsBadRequestError):
        client._send(too_many)
    assert faulty.count(SEARCH) == 4  # one more request, no retry of a 400


def test_retry_after_forms_and_cap() -> None:
    policy = CardsRetryPolicy(max_attempts=5, base_delay=0.5, max_delay=10.0)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert p.parse_retry_after("7") == 7.0
    date = format_datetime(now + timedelta(seconds=4), usegmt=True)
    assert p.parse_retry_after(date, now=now) == 4.0
    assert p.parse_retry_after("soon") is None and p.parse_retry_after("-3") is None
    err = CardsServiceUnavailableError("x", status=429)
    err.retry_after = 120.0
    read = p.get_request("a" * 64)
    assert p.retry_delay(policy, read, 1, err) == 10.0  # capped
    err.retry_after = None
    assert [p.retry_delay(policy, read, n, err) for n in (1, 2, 3, 4, 5)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        None,
    ]
    uncertain = CardsServiceUnavailableError("x", status=503)
    assert p.retry_delay(policy, p.revoke_request("a" * 64), 1, uncertain) is None  # a write
    assert p.retry_delay(policy, p.revoke_request("a" * 64), 1, err) == 0.5  # 429: not applied
    for bad in (dict(max_attempts=0), dict(base_delay=-1), dict(max_delay=-1)):
        with pytest.raises(ConfigurationError):
            CardsRetryPolicy(**bad)  # type: ignore[arg-type]


def test_outdated_check_is_chunked_like_search() -> None:
    faulty, slept = Faulty(), []
    client = client_for(faulty, slept)
    first = client.publish_card(generate_key_pair().private_key)
    client.publish_card(generate_key_pair().private_key, previous_card_id=first.id)
    others = [f"{n:064x}" for n in range(119)]
    ids = [*others[:60], first.id, *others[60:], first.id.upper()]
    assert client.get_outdated(ids) == [first.id]
    assert faulty.count(UPDATED) == 3  # 120 distinct ids: 50 + 50 + 20
    bodies = [r for r in faulty.fake.requests if r.url.path == "/card/v5/actions/updated"]
    assert [len(httpx.Response(200, content=r.content).json()["card_ids"]) for r in bodies] == [
        50,
        50,
        20,
    ]
    assert [len(r.json["card_ids"]) for r in p.outdated_requests(ids)] == [50, 50, 20]


@pytest.mark.parametrize("kind", ["502-after", "drop-after"])
def test_publish_after_a_lost_answer_finds_the_card_instead_of_posting_again(kind: str) -> None:
    faulty, slept = Faulty(), []
    client = client_for(faulty, slept)
    faulty.faults[PUBLISH] = [kind]
    key = generate_key_pair().private_key
    card = client.publish_card(key)
    assert faulty.count(PUBLISH) == 1 and faulty.count(SEARCH) == 1  # looked, did not re-post
    assert list(faulty.fake.cards) == [card.id]
    assert card.public_key == key.public_key and card.signatures[-1].signer == "virgil"


def test_publish_refused_or_not_applied_is_posted_again() -> None:
    faulty, slept = Faulty(), []
    client = client_for(faulty, slept)
    faulty.faults[PUBLISH] = ["429", "503"]
    card = client.publish_card(generate_key_pair().private_key)
    assert faulty.count(PUBLISH) == 3
    assert faulty.count(SEARCH) == 1  # only after the uncertain 503; the 429 needs no lookup
    assert slept[0] == 3.0 and list(faulty.fake.cards) == [card.id]


def test_publish_gives_up_after_the_attempts() -> None:
    faulty, slept = Faulty(), []
    client = client_for(faulty, slept, retry_policy=CardsRetryPolicy(max_attempts=2))
    faulty.faults[PUBLISH] = ["503"] * 5
    with pytest.raises(CardsServiceUnavailableError):
        client.publish_card(generate_key_pair().private_key)
    assert faulty.count(PUBLISH) == 2 and faulty.fake.cards == {}


def test_revoke_checks_the_card_before_sending_again() -> None:
    faulty, slept = Faulty(), []
    client = client_for(faulty, slept)
    lost = client.publish_card(generate_key_pair().private_key)
    faulty.faults[("POST", "revoke")] = ["502-after"]
    client.revoke_card(lost.id)
    assert faulty.count(("POST", "revoke")) == 1 and faulty.count(("GET", "get")) == 1
    refused = client.publish_card(generate_key_pair().private_key)
    faulty.faults[("POST", "revoke")] = ["503"]
    client.revoke_card(refused.id)
    assert faulty.count(("POST", "revoke")) == 3 and faulty.count(("GET", "get")) == 2
    assert client.get_outdated([lost.id, refused.id]) == [lost.id, refused.id]


def test_no_retry_policy_keeps_single_attempts() -> None:
    faulty, slept = Faulty(), []
    client = client_for(faulty, slept, retry_policy=p.NO_RETRY)
    faulty.faults[SEARCH] = ["503"]
    with pytest.raises(CardsServiceUnavailableError):
        client.search_cards("alice")
    assert slept == [] and faulty.count(SEARCH) == 1


def test_async_client_shares_the_policy() -> None:
    faulty, slept = Faulty(), []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run() -> None:
        async with AsyncCardsClient(
            lambda: jwt_for("alice"),
            base_url="http://cards.test",
            service_public_key=SERVICE.public_key,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(faulty)),
            sleep=sleep,
        ) as client:
            faulty.faults[PUBLISH] = ["drop-after"]
            card = await client.publish_card(generate_key_pair().private_key)
            assert faulty.count(PUBLISH) == 1 and list(faulty.fake.cards) == [card.id]
            faulty.faults[SEARCH] = ["429"]
            assert [c.id for c in await client.search_cards("alice")] == [card.id]
            faulty.faults[("POST", "revoke")] = ["503"]
            await client.revoke_card(card.id)
            assert await client.get_outdated([card.id]) == [card.id]

    asyncio.run(run())
    assert 3.0 in slept


def test_sleep_must_be_callable() -> None:
    bad: Callable[[float], None] = "nap"  # type: ignore[assignment]
    with pytest.raises(ConfigurationError):
        CardsClient(lambda: jwt_for("a"), service_public_key=SERVICE.public_key, sleep=bad)
    with pytest.raises(ConfigurationError):
        CardsClient(lambda: jwt_for("a"), service_public_key=SERVICE.public_key, retry_policy=3)  # type: ignore[arg-type]
