"""The mock Twilio Conversations service, driven by the official twilio SDK (sync).

Every response goes through ``tests.twilio_spec`` and is validated against Twilio's OpenAPI spec
(success) or Twilio's error shape (4xx/5xx).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import ChatGrant
from twilio.rest import Client

from mock_services.journal import Journal
from mock_services.twilio import MockTwilioService, TwilioLimits
from tests.twilio_spec import (
    ERROR_SCHEMA,
    Exchange,
    ValidatingHttpClient,
    http_call,
    validate_exchange,
)
from twilio_e2ee.credentials import TwilioCredentials, generate_development_credentials
from twilio_e2ee.servers import ServerThread


@dataclass
class Mock:
    service: MockTwilioService
    url: str
    credentials: TwilioCredentials
    http: ValidatingHttpClient
    client: Client

    @property
    def auth(self) -> tuple[str, str]:
        assert self.credentials.auth_token is not None
        return (self.credentials.account_sid, self.credentials.auth_token)

    def sdk(self, username: str, password: str) -> Client:
        return Client(
            username,
            password,
            self.credentials.account_sid,
            http_client=ValidatingHttpClient(self.url),
        )


def _start(service: MockTwilioService, creds: TwilioCredentials) -> tuple[ServerThread, Mock]:
    server = ServerThread(service.app, name="mock-twilio").start()
    http = ValidatingHttpClient(server.url)
    assert creds.auth_token is not None
    client = Client(creds.account_sid, creds.auth_token, http_client=http)
    return server, Mock(service, server.url, creds, http, client)


@pytest.fixture(scope="module")
def mock() -> Iterator[Mock]:
    creds = generate_development_credentials().twilio
    service = MockTwilioService(creds, limits=TwilioLimits(participants_per_conversation=5))
    server, m = _start(service, creds)
    try:
        yield m
    finally:
        server.stop()
        service.close()


def rest_error(call: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as info:
        call()
    return info.value


# --- resources -----------------------------------------------------------------------------


def test_default_service_exists_from_the_start(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    config = v1.configuration().fetch()
    assert config.default_chat_service_sid == mock.credentials.service_sid
    service = v1.services(mock.credentials.service_sid).fetch()
    assert service.sid == mock.credentials.service_sid
    assert service.account_sid == mock.credentials.account_sid


def test_conversation_lifecycle(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    conv = v1.conversations.create(
        friendly_name="Alice & Bob", unique_name="lifecycle", attributes='{"topic": "demo"}'
    )
    assert conv.sid.startswith("CH") and len(conv.sid) == 34
    assert conv.chat_service_sid == mock.credentials.service_sid
    assert conv.state == "active"
    assert conv.date_created is not None and conv.date_created.tzinfo is not None  # parsed
    assert conv.url == f"https://conversations.twilio.com/v1/Conversations/{conv.sid}"
    assert v1.conversations("lifecycle").fetch().sid == conv.sid  # unique name as path SID
    updated = v1.conversations(conv.sid).update(friendly_name="renamed", state="inactive")
    assert (updated.friendly_name, updated.state) == ("renamed", "inactive")
    assert json.loads(updated.attributes) == {"topic": "demo"}
    assert conv.sid in [c.sid for c in v1.conversations.list()]
    assert v1.conversations(conv.sid).delete() is True
    err = rest_error(lambda: v1.conversations(conv.sid).fetch())
    assert (err.status, err.code) == (404, 20404)


def test_unique_name_conflict_and_bad_state(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    v1.conversations.create(unique_name="taken")
    err = rest_error(lambda: v1.conversations.create(unique_name="taken"))
    assert (err.status, err.code) == (409, 50353)
    err = rest_error(lambda: v1.conversations.create(state="sleeping"))
    assert (err.status, err.code) == (400, 20001)


def test_participants(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    conv = v1.conversations.create(friendly_name="participants")
    parts = v1.conversations(conv.sid).participants
    alice = parts.create(identity="alice", attributes='{"role": "host"}')
    bob = parts.create(identity="bob")
    assert alice.sid.startswith("MB") and alice.role_sid.startswith("RL")
    err = rest_error(lambda: parts.create(identity="alice"))
    assert (err.status, err.code) == (409, 50433)
    assert v1.conversations(conv.sid).participants("bob").fetch().sid == bob.sid
    changed = (
        v1.conversations(conv.sid)
        .participants(alice.sid)
        .update(attributes='{"role": "guest"}', last_read_message_index=3)
    )
    assert json.loads(changed.attributes) == {"role": "guest"}
    assert changed.last_read_message_index == 3
    assert {p.identity for p in parts.list()} == {"alice", "bob"}
    assert v1.conversations(conv.sid).participants(bob.sid).delete() is True
    assert [p.identity for p in parts.list()] == ["alice"]
    assert v1.users("alice").fetch().identity == "alice"  # adding a chat participant made a User
    err = rest_error(lambda: parts.create())
    assert (err.status, err.code) == (400, 20001)


def test_participants_per_conversation_limit(mock: Mock) -> None:
    parts = mock.client.conversations.v1.conversations.create().participants
    for i in range(5):
        parts.create(identity=f"member-{i}")
    err = rest_error(lambda: parts.create(identity="one-too-many"))
    assert err.code == 50417 and err.status == 403
    assert len(parts.list()) == 5


def test_hundreds_of_messages_paged_back_in_order(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    conv = v1.conversations.create(friendly_name="history")
    v1.conversations(conv.sid).participants.create(identity="alice")
    messages = v1.conversations(conv.sid).messages
    sent = [messages.create(author="alice", body=f"message {i}").sid for i in range(230)]
    listed = list(messages.stream(page_size=50))
    assert [m.sid for m in listed] == sent
    assert [m.index for m in listed] == list(range(230))
    assert all(m.participant_sid is not None for m in listed)
    newest_first = list(messages.stream(order="desc", page_size=40))
    assert [m.sid for m in newest_first] == sent[::-1]
    page = messages.page(page_size=100)
    meta = page._payload["meta"]
    assert meta["key"] == "messages" and meta["page"] == 0 and meta["page_size"] == 100
    assert meta["previous_page_url"] is None
    assert meta["next_page_url"].startswith(
        f"https://conversations.twilio.com/v1/Conversations/{conv.sid}/Messages?PageSize=100&Page=1&PageToken=PT"
    )
    second = page.next_page()
    assert [m.index for m in second] == list(range(100, 200))
    assert second._payload["meta"]["previous_page_url"] is not None
    assert [m.index for m in second.previous_page()] == list(range(100))
    # deleting while paging: a token naming a deleted message still resolves to its position
    third_url = second._payload["meta"]["next_page_url"]
    first_of_third = sent[200]
    messages(first_of_third).delete()
    third = second.next_page()
    assert [m.index for m in third] == list(range(201, 230))
    assert third_url.endswith("PageToken=PT200")
    assert third._payload["meta"]["next_page_url"] is None


def test_message_fetch_update_delete(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    conv = v1.conversations.create()
    msgs = v1.conversations(conv.sid).messages
    m = msgs.create(body="ciphertext==", attributes='{"e2ee": 1}', author="bob")
    assert m.sid.startswith("IM") and m.index == 0 and m.participant_sid is None  # not a member
    system = msgs.create(body="no author")
    assert system.author == "system" and system.index == 1
    assert json.loads(msgs.create(body="x").attributes) == {}
    fetched = v1.conversations(conv.sid).messages(m.sid).fetch()
    assert (fetched.body, fetched.author) == ("ciphertext==", "bob")
    updated = (
        v1.conversations(conv.sid).messages(m.sid).update(body="edited", attributes='{"v": 2}')
    )
    assert updated.body == "edited" and json.loads(updated.attributes) == {"v": 2}
    assert v1.conversations(conv.sid).messages(m.sid).delete() is True
    assert [x.index for x in msgs.list()] == [1, 2]
    assert msgs.create(body="after delete").index == 3  # indices never reused
    err = rest_error(lambda: msgs.create())
    assert (err.status, err.code) == (400, 20001)


def test_users(mock: Mock) -> None:
    users = mock.client.conversations.v1.users
    carol = users.create(identity="carol", friendly_name="Carol", attributes='{"a": 1}')
    assert carol.sid.startswith("US") and carol.chat_service_sid == mock.credentials.service_sid
    err = rest_error(lambda: users.create(identity="carol"))
    assert err.status == 409
    assert (
        mock.client.conversations.v1.users("carol").update(friendly_name="C").friendly_name == "C"
    )
    assert mock.client.conversations.v1.users(carol.sid).delete() is True
    err = rest_error(lambda: mock.client.conversations.v1.users("carol").fetch())
    assert (err.status, err.code) == (404, 20404)
    missing = http_call(mock.url, "POST", "/v1/Users", auth=mock.auth, data={"FriendlyName": "x"})
    assert (missing.status_code, missing.json()["code"]) == (400, 20001)


def test_service_scoped_routes(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    other = v1.services.create(friendly_name="second service")
    assert other.sid.startswith("IS")
    scoped = v1.services(other.sid).conversations.create(friendly_name="scoped")
    assert scoped.chat_service_sid == other.sid
    assert scoped.url == (
        f"https://conversations.twilio.com/v1/Services/{other.sid}/Conversations/{scoped.sid}"
    )
    v1.services(other.sid).conversations(scoped.sid).participants.create(identity="dave")
    msg = v1.services(other.sid).conversations(scoped.sid).messages.create(author="dave", body="hi")
    assert msg.participant_sid is not None
    assert [m.body for m in v1.services(other.sid).conversations(scoped.sid).messages.list()] == [
        "hi"
    ]
    assert v1.services(other.sid).users("dave").fetch().chat_service_sid == other.sid
    # a conversation of another service is not reachable through the default-service URLs
    err = rest_error(lambda: v1.conversations(scoped.sid).fetch())
    assert (err.status, err.code) == (404, 20404)
    assert scoped.sid in [s.sid for s in v1.services(other.sid).conversations.list()]
    assert other.sid in [s.sid for s in v1.services.list()]
    assert v1.services(other.sid).delete() is True
    err = rest_error(lambda: v1.services(other.sid).conversations(scoped.sid).fetch())
    assert err.code == 20404


# --- errors ----------------------------------------------------------------------------------


def test_wrong_credentials_are_refused(mock: Mock) -> None:
    creds = mock.credentials
    for username, password in (
        (creds.account_sid, "wrong-token"),
        (creds.api_key_sid, "wrong-secret"),
        ("AC" + "0" * 32, creds.auth_token or ""),
    ):
        err = rest_error(
            lambda u=username, p=password: mock.sdk(u, p).conversations.v1.configuration().fetch()
        )
        assert (err.status, err.code) == (401, 20003)
    response = http_call(mock.url, "GET", "/v1/Conversations", auth=None)
    assert response.status_code == 401 and response.json()["code"] == 20003
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    bad = {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}
    assert http_call(mock.url, "GET", "/v1/Services", auth=None, headers=bad).status_code == 401
    # API key + secret works, as Client(api_key, secret, account_sid) sends it
    api = mock.sdk(creds.api_key_sid, creds.api_secret)
    assert api.conversations.v1.services(creds.service_sid).fetch().sid == creds.service_sid


def test_unknown_sids_get_20404(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    conv = v1.conversations.create()
    missing = "0" * 32
    calls = [
        lambda: v1.conversations("CH" + missing).fetch(),
        lambda: v1.conversations("no-such-unique-name").fetch(),
        lambda: v1.conversations(conv.sid).participants("MB" + missing).fetch(),
        lambda: v1.conversations(conv.sid).messages("IM" + missing).fetch(),
        lambda: v1.conversations(conv.sid).messages("IM" + missing).update(body="x"),
        lambda: v1.conversations("CH" + missing).messages.create(body="x"),
        lambda: v1.users("US" + missing).fetch(),
        lambda: v1.services("IS" + missing).fetch(),
        lambda: v1.conversations(conv.sid).webhooks("WH" + missing).fetch(),
    ]
    for call in calls:
        err = rest_error(call)
        assert (err.status, err.code) == (404, 20404), err
    response = http_call(mock.url, "GET", "/v1/Nothing/Here", auth=mock.auth)
    assert response.status_code == 404
    assert response.json()["message"] == "The requested resource /v1/Nothing/Here was not found"
    for method in ("PUT", "PATCH", "OPTIONS"):
        response = http_call(mock.url, method, "/v1/Conversations", auth=mock.auth)
        assert (response.status_code, response.json()["code"]) == (405, 20004)


def test_limits_on_bodies_and_attributes(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    conv = v1.conversations.create()
    msgs = v1.conversations(conv.sid).messages
    limit = TwilioLimits().message_body_bytes
    assert len(msgs.create(body="a" * limit).body) == limit
    err = rest_error(lambda: msgs.create(body="a" * (limit + 1)))
    assert (err.status, err.code) == (400, 50504)
    err = rest_error(lambda: msgs.create(body="é" * (limit // 2 + 1)))  # counted in UTF-8 bytes
    assert err.code == 50504
    big = json.dumps({"pad": "x" * 4096})
    err = rest_error(lambda: msgs.create(body="x", attributes=big))
    assert (err.status, err.code) == (400, 50303)
    err = rest_error(lambda: msgs.create(body="x", attributes="{not json"))
    assert (err.status, err.code) == (400, 50304)
    err = rest_error(
        lambda: v1.conversations(conv.sid).update(attributes=json.dumps({"p": "x" * 16384}))
    )
    assert err.code == 50303
    assert v1.conversations(conv.sid).update(attributes=json.dumps({"p": "x" * 8000})).attributes
    err = rest_error(lambda: v1.conversations(conv.sid).participants.create(identity="i" * 257))
    assert (err.status, err.code) == (400, 20001)
    # nothing of the refused requests was stored
    assert [len(m.body) for m in msgs.list()] == [limit]


def test_bad_request_bodies(mock: Mock) -> None:
    response = http_call(
        mock.url,
        "POST",
        "/v1/Conversations",
        auth=mock.auth,
        content=b'{"FriendlyName": "json"}',
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["code"]) == (400, 20001)
    response = http_call(mock.url, "GET", "/v1/Conversations?PageToken=garbage", auth=mock.auth)
    assert response.status_code == 400
    response = http_call(mock.url, "GET", "/v1/Conversations?PageSize=abc", auth=mock.auth)
    assert response.status_code == 400
    response = http_call(
        mock.url, "POST", "/v1/Conversations", auth=mock.auth, data={"DateCreated": "yesterday"}
    )
    assert response.status_code == 400


def test_journal_records_bodies_attributes_authors(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    conv = v1.conversations.create()
    before = len(mock.service.journal)
    v1.conversations(conv.sid).messages.create(author="erin", body="SECRET?", attributes='{"k": 1}')
    entries = mock.service.journal.entries[before:]
    (entry,) = [e for e in entries if e.method == "POST"]
    assert entry.service == "twilio" and entry.status == 201 and entry.identity == "erin"
    assert entry.request["Body"] == "SECRET?" and entry.request["Attributes"] == {"k": 1}
    assert entry.response["author"] == "erin"
    assert mock.service.messages(conv.sid)[0]["body"] == "SECRET?"


def test_validator_is_not_a_rubber_stamp(mock: Mock) -> None:
    conv = mock.client.conversations.v1.conversations.create()
    good = next(e for e in reversed(mock.http.exchanges) if e.status == 201)
    body = good.json
    assert body["sid"] == conv.sid
    validate_exchange(good)
    for field, value in (("sid", "XX" + "0" * 32), ("date_created", 12), ("state", "sleeping")):
        bad = Exchange(
            good.method, good.url, None, good.data, 201, json.dumps({**body, field: value})
        )
        with pytest.raises(Exception, match=r"(?i)invalid|valid|schema"):
            validate_exchange(bad)
    with pytest.raises(Exception):  # noqa: B017 - any validation error
        validate_exchange(Exchange("GET", good.url, None, None, 404, json.dumps({"code": 1})))
    rfc = {"code": 20404, "message": "m", "more_info": "https://www.twilio.com/docs/errors/20404"}
    rfc |= {"status": 404, "type": "about:blank", "title": "t"}
    with pytest.raises(Exception):  # noqa: B017
        validate_exchange(Exchange("GET", good.url, None, None, 404, json.dumps(rfc)))
    assert ERROR_SCHEMA["required"] == ["code", "message", "more_info", "status"]


# --- access tokens (mock-only client mode) ---------------------------------------------------


def _token(creds: TwilioCredentials, identity: str, *, expired: bool = False) -> str:
    now = int(time.time())
    token = AccessToken(
        creds.account_sid,
        creds.api_key_sid,
        creds.api_secret,
        identity=identity,
        nbf=now - 3600 if expired else now,
        valid_until=now - 3000 if expired else now + 600,
        grants=[ChatGrant(service_sid=creds.service_sid)],
    )
    result = token.to_jwt()
    return result if isinstance(result, str) else result.decode()


def test_access_token_client_mode(mock: Mock) -> None:
    conv = mock.client.conversations.v1.conversations.create()
    path = f"/v1/Conversations/{conv.sid}/Messages"
    token = _token(mock.credentials, "frank")
    ok = http_call(
        mock.url, "POST", path, auth=None, data={"Body": "hi"}, headers={"X-Twilio-Token": token}
    )
    assert ok.status_code == 201 and ok.json()["author"] == "frank"
    forged = http_call(
        mock.url,
        "POST",
        path,
        auth=None,
        data={"Body": "hi", "Author": "grace"},
        headers={"X-Twilio-Token": token},
    )
    assert (forged.status_code, forged.json()["code"]) == (403, 20403)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    bad = http_call(
        mock.url, "GET", path, auth=None, headers={"Authorization": f"Bearer {tampered}"}
    )
    assert bad.status_code == 401 and bad.json()["code"] in (20101, 20107)
    expired = _token(mock.credentials, "frank", expired=True)
    old = http_call(mock.url, "GET", path, auth=None, headers={"X-Twilio-Token": expired})
    assert (old.status_code, old.json()["code"]) == (401, 20104)
    assert [m["author"] for m in mock.service.messages(conv.sid)] == ["frank"]
    # a user token does not administer the account
    for method, admin_path in (("GET", "/v1/Services"), ("POST", "/v1/Configuration")):
        refused = http_call(
            mock.url, method, admin_path, auth=None, headers={"X-Twilio-Token": token}
        )
        assert (refused.status_code, refused.json()["code"]) == (403, 20403)


# --- persistence -----------------------------------------------------------------------------


def test_sqlite_state_survives_a_restart(tmp_path: Path) -> None:
    creds = generate_development_credentials().twilio
    db = tmp_path / "twilio.sqlite3"
    service = MockTwilioService(creds, db_path=db, journal=Journal())
    server, m = _start(service, creds)
    try:
        v1 = m.client.conversations.v1
        conv = v1.conversations.create(unique_name="persist", attributes='{"x": 1}')
        v1.conversations(conv.sid).participants.create(identity="alice")
        v1.conversations(conv.sid).participants.create(identity="bob")
        sids = [
            v1.conversations(conv.sid).messages.create(author="alice", body=f"m{i}").sid
            for i in range(5)
        ]
        v1.conversations(conv.sid).messages(sids[1]).delete()
        other = v1.services.create(friendly_name="extra")
    finally:
        server.stop()
        service.close()
    service2 = MockTwilioService(creds, db_path=db)
    server2, m2 = _start(service2, creds)
    try:
        v1 = m2.client.conversations.v1
        assert v1.conversations("persist").fetch().sid == conv.sid
        assert {p.identity for p in v1.conversations(conv.sid).participants.list()} == {
            "alice",
            "bob",
        }
        listed = v1.conversations(conv.sid).messages.list()
        assert [x.sid for x in listed] == [sids[0], *sids[2:]]
        assert v1.conversations(conv.sid).messages.create(body="next").index == 5
        assert v1.services(other.sid).fetch().friendly_name == "extra"
        assert v1.configuration().fetch().default_chat_service_sid == creds.service_sid
    finally:
        server2.stop()
        service2.close()


def test_failures_inside_a_request_leave_no_partial_state(monkeypatch: pytest.MonkeyPatch) -> None:
    creds = generate_development_credentials().twilio
    service = MockTwilioService(creds)
    server, m = _start(service, creds)
    try:
        v1 = m.client.conversations.v1
        conv = v1.conversations.create()
        v1.conversations(conv.sid).messages.create(body="first")
        real_insert = service.store.insert

        def broken_insert(kind: str, *args: Any, **kwargs: Any) -> Any:
            if kind == "message":
                raise RuntimeError("disk full")
            return real_insert(kind, *args, **kwargs)

        monkeypatch.setattr(service.store, "insert", broken_insert)
        err = rest_error(lambda: v1.conversations(conv.sid).messages.create(body="lost"))
        assert (err.status, err.code) == (500, 20500)
        monkeypatch.setattr(service.store, "insert", real_insert)
        # the index counter was rolled back with the failed insert
        assert v1.conversations(conv.sid).messages.create(body="second").index == 1
        assert [x["body"] for x in service.messages(conv.sid)] == ["first", "second"]
        huge = http_call(
            m.url, "POST", "/v1/Conversations", auth=m.auth, data={"Attributes": "x" * 1_100_000}
        )
        assert huge.status_code == 413
    finally:
        server.stop()
        service.close()


def test_concurrent_senders_get_unique_ordered_indices(mock: Mock) -> None:
    from concurrent.futures import ThreadPoolExecutor

    conv = mock.client.conversations.v1.conversations.create()

    def send(worker: int) -> list[int]:
        client = mock.sdk(mock.credentials.api_key_sid, mock.credentials.api_secret)
        msgs = client.conversations.v1.conversations(conv.sid).messages
        return [msgs.create(author=f"w{worker}", body=f"{worker}-{i}").index for i in range(15)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(send, range(4)))
    indices = sorted(i for r in results for i in r)
    assert indices == list(range(60))
    for r in results:
        assert r == sorted(r)  # each sender's messages keep their order
    assert [m["index"] for m in mock.service.messages(conv.sid)] == list(range(60))


def test_sid_page_tokens_survive_deletes(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    service = v1.services.create(friendly_name="paging users")
    users = v1.services(service.sid).users
    created = [users.create(identity=f"user-{i}").sid for i in range(7)]
    assert [u.sid for u in users.stream(page_size=3)] == created
    first = users.page(page_size=3)
    next_url = first._payload["meta"]["next_page_url"]
    assert next_url.endswith(f"PageToken=PT{created[3]}")  # names the first item of the next page
    v1.services(service.sid).users(created[3]).delete()
    second = first.next_page()
    assert [u.sid for u in second] == created[4:7]
    assert second._payload["meta"]["next_page_url"] is None
    previous = second.previous_page()
    assert [u.sid for u in previous] == created[:3]


def test_a_page_past_the_end_is_empty_not_a_500(mock: Mock) -> None:
    v1 = mock.client.conversations.v1
    service = v1.services.create(friendly_name="past the end")
    users = v1.services(service.sid).users
    created = [users.create(identity=f"late-{i}").sid for i in range(3)]
    base = f"/v1/Services/{service.sid}/Users?PageSize=2"
    for page in ("5", "99999999999999999999"):
        response = http_call(mock.url, "GET", f"{base}&Page={page}", auth=mock.auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["users"] == [] and body["meta"]["next_page_url"] is None
        # "previous" leads back to the last real page
        previous = body["meta"]["previous_page_url"]
        assert previous is not None and f"PageToken=PT{created[1]}" in previous
