"""Post-event webhooks from the mock Twilio service, checked with twilio's own RequestValidator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from mock_services.twilio import MockTwilioService, twilio_signature
from tests.twilio_spec import ValidatingHttpClient, http_call
from twilio_e2ee.credentials import TwilioCredentials, generate_development_credentials
from twilio_e2ee.servers import ServerThread


@dataclass
class Received:
    method: str
    url: str
    form: dict[str, str]
    signature: str


@dataclass
class Receiver:
    url: str
    hits: list[Received] = field(default_factory=list)

    def wait(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.hits) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.hits) >= count, f"expected {count} webhooks, got {len(self.hits)}"
        return self.hits


@dataclass
class World:
    credentials: TwilioCredentials
    service: MockTwilioService
    client: Client
    receiver: Receiver
    mock_url: str

    @property
    def auth(self) -> tuple[str, str]:
        assert self.credentials.auth_token is not None
        return (self.credentials.account_sid, self.credentials.auth_token)

    @property
    def validator(self) -> RequestValidator:
        assert self.credentials.auth_token is not None
        return RequestValidator(self.credentials.auth_token)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    hits: list[Received] = []

    async def hook(request: Request) -> PlainTextResponse:
        raw = (await request.body()).decode() if request.method == "POST" else ""
        form = dict(parse_qsl(raw, keep_blank_values=True))
        hits.append(
            Received(request.method, str(request.url), form, request.headers["x-twilio-signature"])
        )
        return PlainTextResponse("ok")

    receiver_app = Starlette(routes=[Route("/{path:path}", hook, methods=["GET", "POST"])])
    creds = generate_development_credentials().twilio
    service = MockTwilioService(creds)
    with (
        ServerThread(receiver_app, name="webhook-receiver") as receiver,
        ServerThread(service.app, name="mock-twilio") as server,
    ):
        assert creds.auth_token is not None
        client = Client(
            creds.account_sid, creds.auth_token, http_client=ValidatingHttpClient(server.url)
        )
        yield World(creds, service, client, Receiver(receiver.url, hits), server.url)
    service.close()


def test_signature_matches_twilios_published_vector() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_service_post_webhook_is_signed_and_accepted(world: World) -> None:
    v1 = world.client.conversations.v1
    hooks = v1.services(world.credentials.service_sid).configuration.webhooks()
    config = hooks.update(
        post_webhook_url=world.receiver.url + "/service-hook",
        filters=["onMessageAdded", "onParticipantAdded"],
        method="POST",
    )
    assert config.filters == ["onMessageAdded", "onParticipantAdded"]
    before = len(world.receiver.hits)
    conv = v1.conversations.create(friendly_name="hooks", x_twilio_webhook_enabled="true")
    v1.conversations(conv.sid).participants.create(
        identity="alice", x_twilio_webhook_enabled="true"
    )
    msg = v1.conversations(conv.sid).messages.create(
        author="alice", body="c2lnbmVk", attributes='{"e2ee": 1}', x_twilio_webhook_enabled="true"
    )
    hits = world.receiver.wait(before + 2)[before:]
    assert [h.form["EventType"] for h in hits] == ["onParticipantAdded", "onMessageAdded"]
    added = hits[1]
    assert added.method == "POST" and added.url == world.receiver.url + "/service-hook"
    assert added.form["MessageSid"] == msg.sid and added.form["ConversationSid"] == conv.sid
    assert added.form["Body"] == "c2lnbmVk" and added.form["Author"] == "alice"
    assert added.form["Index"] == "0" and added.form["Source"] == "API"
    assert added.form["ChatServiceSid"] == world.credentials.service_sid
    assert world.validator.validate(added.url, added.form, added.signature)
    assert not RequestValidator("wrong-token").validate(added.url, added.form, added.signature)
    tampered = {**added.form, "Body": "forged"}
    assert not world.validator.validate(added.url, tampered, added.signature)
    # REST actions without X-Twilio-Webhook-Enabled: true fire nothing (as on Twilio)
    count = len(world.receiver.hits)
    v1.conversations(conv.sid).messages.create(author="alice", body="quiet")
    v1.conversations(conv.sid).messages.create(
        author="alice", body="loud", x_twilio_webhook_enabled="true"
    )
    later = world.receiver.wait(count + 1)[count:]
    assert [h.form["Body"] for h in later] == ["loud"]
    # user events go to the service hook as well
    hooks.update(filters=["onUserAdded", "onUserUpdated"])
    count = len(world.receiver.hits)
    v1.users.create(identity="zoe", x_twilio_webhook_enabled="true")
    v1.users("zoe").update(friendly_name="Zoe", x_twilio_webhook_enabled="true")
    users = world.receiver.wait(count + 2)[count:]
    assert [(h.form["EventType"], h.form["Identity"]) for h in users] == [
        ("onUserAdded", "zoe"),
        ("onUserUpdated", "zoe"),
    ]
    assert "ConversationSid" not in users[0].form
    assert all(world.validator.validate(h.url, h.form, h.signature) for h in users)
    hooks.update(post_webhook_url="", filters=[])


def test_conversation_scoped_get_webhook_signs_the_url(world: World) -> None:
    v1 = world.client.conversations.v1
    conv = v1.conversations.create()
    hook = v1.conversations(conv.sid).webhooks.create(
        target="webhook",
        configuration_url=world.receiver.url + "/conv-hook?tenant=7",
        configuration_method="GET",
        configuration_filters=["onMessageUpdated", "onMessageRemoved"],
    )
    assert hook.sid.startswith("WH") and hook.configuration["method"] == "get"
    msg = v1.conversations(conv.sid).messages.create(body="v1", x_twilio_webhook_enabled="true")
    before = len(world.receiver.hits)
    v1.conversations(conv.sid).messages(msg.sid).update(body="v2", x_twilio_webhook_enabled="true")
    # twilio-python 9.x drops X-Twilio-Webhook-Enabled on delete(): send that one directly
    deleted = http_call(
        world.mock_url,
        "DELETE",
        f"/v1/Conversations/{conv.sid}/Messages/{msg.sid}",
        auth=world.auth,
        headers={"X-Twilio-Webhook-Enabled": "true"},
    )
    assert deleted.status_code == 204
    hits = world.receiver.wait(before + 2)[before:]
    assert all(h.method == "GET" and "tenant=7" in h.url for h in hits)
    assert all(world.validator.validate(h.url, {}, h.signature) for h in hits)
    assert [
        "EventType=onMessageUpdated" in hits[0].url,
        "EventType=onMessageRemoved" in hits[1].url,
    ] == [True, True]
    assert f"WebhookSid={hook.sid}" in hits[0].url
    updated = (
        v1.conversations(conv.sid)
        .webhooks(hook.sid)
        .update(configuration_filters=["onMessageAdded"])
    )
    assert updated.configuration["filters"] == ["onMessageAdded"]
    assert [w.sid for w in v1.conversations(conv.sid).webhooks.list()] == [hook.sid]
    assert v1.conversations(conv.sid).webhooks(hook.sid).delete() is True


def test_trigger_webhook_fires_on_keywords(world: World) -> None:
    v1 = world.client.conversations.v1
    conv = v1.conversations.create()
    v1.conversations(conv.sid).webhooks.create(
        target="trigger",
        configuration_url=world.receiver.url + "/trigger",
        configuration_triggers=["help"],
    )
    before = len(world.receiver.hits)
    v1.conversations(conv.sid).messages.create(body="nothing here", x_twilio_webhook_enabled="true")
    v1.conversations(conv.sid).messages.create(body="HELP me", x_twilio_webhook_enabled="true")
    hits = world.receiver.wait(before + 1)[before:]
    assert [h.form["Body"] for h in hits] == ["HELP me"]
    assert world.validator.validate(hits[0].url, hits[0].form, hits[0].signature)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "http://10.0.0.1/hook",
        "ftp://127.0.0.1/x",
        "http://localhost.evil.com/",
    ],
)
def test_only_loopback_targets_are_accepted(world: World, url: str) -> None:
    v1 = world.client.conversations.v1
    conv = v1.conversations.create()
    with pytest.raises(TwilioRestException) as info:
        v1.conversations(conv.sid).webhooks.create(target="webhook", configuration_url=url)
    assert (info.value.status, info.value.code) == (400, 20001)
    with pytest.raises(TwilioRestException):
        v1.services(world.credentials.service_sid).configuration.webhooks().update(
            post_webhook_url=url
        )
    stored = v1.services(world.credentials.service_sid).configuration.webhooks().fetch()
    assert stored.post_webhook_url != url
    assert v1.conversations(conv.sid).webhooks.list() == []


def test_deliveries_are_recorded(world: World) -> None:
    deliveries: list[Any] = world.service.deliveries
    assert deliveries and all(d.status == 200 and d.error is None for d in deliveries)
    entries = world.service.journal.filter(service="twilio-webhook")
    assert len(entries) == len(deliveries)
