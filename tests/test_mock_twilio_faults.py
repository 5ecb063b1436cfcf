"""Fault injection in the mock Twilio service: 429 + Retry-After, 5xx, "applied but answer lost"."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from mock_services.twilio import FaultInjector, MockTwilioService, TwilioLimits
from mock_services.twilio.ratelimit import ActionRateLimiter
from tests.twilio_spec import ValidatingHttpClient, http_call
from twilio_e2ee.credentials import TwilioCredentials, generate_development_credentials
from twilio_e2ee.errors import ConfigurationError
from twilio_e2ee.servers import ServerThread

MESSAGES = "/v1/Conversations/*/Messages"


@dataclass
class World:
    credentials: TwilioCredentials
    service: MockTwilioService
    client: Client
    url: str

    @property
    def auth(self) -> tuple[str, str]:
        assert self.credentials.auth_token is not None
        return (self.credentials.account_sid, self.credentials.auth_token)


@pytest.fixture()
def world() -> Iterator[World]:
    creds = generate_development_credentials().twilio
    service = MockTwilioService(creds, fault_seed=7)
    with ServerThread(service.app, name="mock-twilio") as server:
        assert creds.auth_token is not None
        client = Client(
            creds.account_sid, creds.auth_token, http_client=ValidatingHttpClient(server.url)
        )
        yield World(creds, service, client, server.url)
    service.close()


def test_rate_limit_answers_429_with_retry_after_and_applies_nothing(world: World) -> None:
    conv = world.client.conversations.v1.conversations.create()
    fault = world.service.faults.add(
        "rate_limit", method="POST", path=MESSAGES, times=2, retry_after=3
    )
    response = http_call(
        world.url,
        "POST",
        f"/v1/Conversations/{conv.sid}/Messages",
        auth=world.auth,
        data={"Body": "a"},
    )
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert response.json()["code"] == 20429
    with pytest.raises(TwilioRestException) as info:
        world.client.conversations.v1.conversations(conv.sid).messages.create(body="b")
    assert (info.value.status, info.value.code) == (429, 20429)
    ok = world.client.conversations.v1.conversations(conv.sid).messages.create(body="c")
    assert ok.index == 0  # the refused requests were never applied
    assert [m["body"] for m in world.service.messages(conv.sid)] == ["c"]
    assert fault.hits == 2
    # GETs and other routes were never affected
    assert world.client.conversations.v1.conversations(conv.sid).fetch().sid == conv.sid


@pytest.mark.parametrize(("status", "code"), [(503, 20503), (500, 20500), (502, 20500)])
def test_server_errors_are_not_applied(world: World, status: int, code: int) -> None:
    conv = world.client.conversations.v1.conversations.create()
    world.service.faults.add("server_error", method="POST", path=MESSAGES, status=status, times=1)
    with pytest.raises(TwilioRestException) as info:
        world.client.conversations.v1.conversations(conv.sid).messages.create(body="x")
    assert (info.value.status, info.value.code) == (status, code)
    assert world.service.messages(conv.sid) == []


def test_answer_lost_applies_the_create_then_fails(world: World) -> None:
    conv = world.client.conversations.v1.conversations.create()
    world.service.faults.add("answer_lost", method="POST", path=MESSAGES, times=1)
    with pytest.raises(TwilioRestException) as info:
        world.client.conversations.v1.conversations(conv.sid).messages.create(
            body="posted once?", attributes='{"client_message_id": "m-1"}'
        )
    assert info.value.status == 502
    stored = world.service.messages(conv.sid)
    assert [m["body"] for m in stored] == ["posted once?"]  # applied although the client saw 502
    # a naive retry posts twice; the stored attributes let a careful client find the first one
    world.client.conversations.v1.conversations(conv.sid).messages.create(body="posted once?")
    assert len(world.service.messages(conv.sid)) == 2
    listed = world.client.conversations.v1.conversations(conv.sid).messages.list()
    assert '"client_message_id": "m-1"' in listed[0].attributes
    entry = next(e for e in world.service.journal.entries if e.status == 502)
    assert entry.response["mock_fault"] == "answer_lost"
    assert entry.response["applied_status"] == 201


def test_faults_are_deterministic_under_a_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        injector = FaultInjector(seed)
        injector.add("server_error", method="POST", path=MESSAGES, rate=0.3)
        return [
            injector.draw("POST", f"/v1/Conversations/CH{i:032x}/Messages") is not None
            for i in range(200)
        ]

    first = pattern(42)
    assert first == pattern(42)
    assert first != pattern(43)
    assert 30 <= sum(first) <= 90  # about 30 %
    injector = FaultInjector(1)
    injector.add("rate_limit", method="POST", path=MESSAGES)
    assert injector.draw("GET", "/v1/Conversations/CH1/Messages") is None
    assert injector.draw("POST", "/v1/Conversations") is None
    assert injector.draw("POST", "/v1/Services/IS1/Conversations/CH1/Messages") is None
    assert injector.draw("POST", "/v1/Conversations/CH1/Messages") is not None


def test_seeded_faults_repeat_over_http(world: World) -> None:
    def run() -> list[int]:
        world.service.faults.clear(seed=5)
        world.service.faults.add("rate_limit", method="POST", path=MESSAGES, rate=0.5)
        conv = world.client.conversations.v1.conversations.create()
        statuses = []
        for i in range(20):
            r = http_call(
                world.url,
                "POST",
                f"/v1/Conversations/{conv.sid}/Messages",
                auth=world.auth,
                data={"Body": str(i)},
            )
            statuses.append(r.status_code)
        assert len(world.service.messages(conv.sid)) == statuses.count(201)
        return statuses

    first = run()
    assert set(first) == {201, 429}
    assert run() == first


def test_bad_fault_configurations_are_refused() -> None:
    injector = FaultInjector()
    with pytest.raises(ConfigurationError):
        injector.add("explode")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        injector.add("rate_limit", rate=1.5)
    with pytest.raises(ConfigurationError):
        injector.add("server_error", status=404)
    with pytest.raises(ConfigurationError):
        injector.add("rate_limit", status=503)
    fault = injector.add("answer_lost")
    injector.remove(fault)
    assert injector.faults == []


def test_actions_per_second_limit_is_opt_in() -> None:
    creds = generate_development_credentials().twilio
    service = MockTwilioService(creds, limits=TwilioLimits(actions_per_second=5))
    with ServerThread(service.app, name="mock-twilio") as server:
        assert creds.auth_token is not None
        client = Client(
            creds.account_sid, creds.auth_token, http_client=ValidatingHttpClient(server.url)
        )
        conv = client.conversations.v1.conversations.create()
        messages = client.conversations.v1.conversations(conv.sid).messages
        for i in range(5):
            messages.create(body=str(i))
        with pytest.raises(TwilioRestException) as info:
            messages.create(body="sixth")
        assert (info.value.status, info.value.code) == (429, 50063)
        assert len(messages.list()) == 5  # reads are not limited
        other = client.conversations.v1.conversations.create()  # another scope: the service
        assert client.conversations.v1.conversations(other.sid).messages.create(body="x").index == 0
    service.close()


def test_rate_limiter_window() -> None:
    now = [100.0]
    limiter = ActionRateLimiter(2, clock=lambda: now[0])
    assert limiter.allow("CH1") and limiter.allow("CH1")
    assert not limiter.allow("CH1")
    assert limiter.allow("CH2")
    now[0] += 1.01
    assert limiter.allow("CH1")


def test_answer_lost_with_dropped_connection_stores_then_closes_the_socket(world: World) -> None:
    """The connection is closed without a status line after the commit (a real transport error)."""
    conv = world.client.conversations.v1.conversations.create()
    fault = world.service.faults.add(
        "answer_lost", method="POST", path=MESSAGES, times=1, drop_connection=True
    )
    messages = world.client.conversations.v1.conversations(conv.sid).messages
    with pytest.raises(requests.ConnectionError) as info:
        messages.create(body="sent into the void", attributes='{"client_message_id": "m-2"}')
    assert "RemoteDisconnected" in repr(info.value) or "aborted" in str(info.value)
    assert fault.hits == 1
    stored = world.service.messages(conv.sid)
    assert [m["body"] for m in stored] == ["sent into the void"]  # committed before the drop
    entry = world.service.journal.entries[-1]
    assert entry.status == 0 and entry.response["mock_fault"] == "answer_lost"
    assert entry.response["connection_dropped"] is True
    assert entry.response["applied_status"] == 201
    # the server is healthy afterwards and the message can be found by its id
    listed = messages.list()
    assert [m.body for m in listed] == ["sent into the void"]
    assert '"client_message_id": "m-2"' in listed[0].attributes
    assert messages.create(body="next").index == 1


def test_dropped_connection_over_a_raw_socket_gets_no_bytes(world: World) -> None:
    conv = world.client.conversations.v1.conversations.create()
    world.service.faults.add("answer_lost", method="POST", path=MESSAGES, drop_connection=True)
    host, port = world.url.removeprefix("http://").split(":")
    body = b"Body=raw"
    token = base64.b64encode(":".join(world.auth).encode()).decode()
    request = (
        f"POST /v1/Conversations/{conv.sid}/Messages HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Basic {token}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received == b""  # closed without a status line
    assert [m["body"] for m in world.service.messages(conv.sid)] == ["raw"]


def test_drop_connection_only_for_answer_lost() -> None:
    injector = FaultInjector()
    with pytest.raises(ConfigurationError):
        injector.add("server_error", drop_connection=True)
    with pytest.raises(ConfigurationError):
        injector.add("rate_limit", drop_connection=True)
    assert injector.add("answer_lost", drop_connection=True).drop_connection


def test_dropped_connection_without_a_reachable_transport_fails_the_answer() -> None:
    """In-process (no socket to close) the answer starts, then the app fails: no usable reply."""
    asyncio.run(_in_process_drop())


async def _in_process_drop() -> None:
    creds = generate_development_credentials().twilio
    service = MockTwilioService(creds)
    service.faults.add("answer_lost", method="POST", drop_connection=True)
    assert creds.auth_token is not None
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
        with pytest.raises(ConnectionAbortedError):
            await client.post(
                "/v1/Conversations", data={}, auth=(creds.account_sid, creds.auth_token)
            )
    assert len(service.conversations()) == 1  # applied all the same
    service.close()
