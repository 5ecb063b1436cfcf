"""The HTTP clients for the twilio SDK: URL rewriting, sync and async, against the mock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from mock_services.twilio import MockTwilioService
from tests.twilio_spec import AsyncValidatingHttpClient, validate_last
from twilio_e2ee.credentials import TwilioCredentials, generate_development_credentials
from twilio_e2ee.errors import ConfigurationError
from twilio_e2ee.servers import ServerThread
from twilio_e2ee.twilio_http import (
    AsyncRedirectingHttpClient,
    RedirectingHttpClient,
    rewrite_twilio_url,
    twilio_rest_client,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://conversations.twilio.com/v1/Conversations?PageSize=50&Page=1&PageToken=PT50",
            "http://127.0.0.1:9000/v1/Conversations?PageSize=50&Page=1&PageToken=PT50",
        ),
        ("https://api.twilio.com/2010-04-01/Accounts", "http://127.0.0.1:9000/2010-04-01/Accounts"),
        ("https://conversations.us1.twilio.com/v1/Services", "http://127.0.0.1:9000/v1/Services"),
        ("https://twilio.com/x", "http://127.0.0.1:9000/x"),
        ("https://example.com/v1/Conversations", "https://example.com/v1/Conversations"),
        ("https://eviltwilio.com/v1", "https://eviltwilio.com/v1"),
        ("https://twilio.com.evil.org/v1", "https://twilio.com.evil.org/v1"),
        ("http://127.0.0.1:5000/v1", "http://127.0.0.1:5000/v1"),
    ],
)
def test_rewrite_twilio_url(url: str, expected: str) -> None:
    assert rewrite_twilio_url(url, "http://127.0.0.1:9000") == expected
    assert rewrite_twilio_url(url, None) == url  # real Twilio: untouched


def test_rewrite_keeps_a_base_path() -> None:
    got = rewrite_twilio_url("https://conversations.twilio.com/v1/Users", "http://localhost:1/mock")
    assert got == "http://localhost:1/mock/v1/Users"


@pytest.mark.parametrize(
    "base", ["127.0.0.1:9000", "ftp://x", "", "http://", 9000, b"http://x", ["http://x"]]
)
def test_bad_base_urls_are_refused(base: str) -> None:
    with pytest.raises(ConfigurationError):
        RedirectingHttpClient(base)
    with pytest.raises(ConfigurationError):
        twilio_rest_client("AC" + "1" * 32, "token", base_url=base)


def test_no_base_url_means_real_twilio() -> None:
    client = twilio_rest_client("AC" + "1" * 32, "token")
    assert isinstance(client.http_client, RedirectingHttpClient)
    assert client.http_client.base_url is None
    assert client.username == "AC" + "1" * 32 and client.account_sid == "AC" + "1" * 32
    keyed = twilio_rest_client("AC" + "1" * 32, "secret", username="SK" + "2" * 32)
    assert keyed.username == "SK" + "2" * 32 and keyed.account_sid == "AC" + "1" * 32


@pytest.fixture()
def echo_url() -> Iterator[str]:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "path": request.url.path,
                "query": request.url.query,
                "original_host": request.headers.get("x-twilio-original-host"),
                "body": (await request.body()).decode(),
            }
        )

    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])
    with ServerThread(app, name="echo") as server:
        yield server.url


def test_sync_client_ignores_proxy_variables(
    echo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "")
    client = RedirectingHttpClient(echo_url)
    response = client.request(
        "POST",
        "https://conversations.twilio.com/v1/Conversations",
        params={"a": "1"},
        data={"B": "2"},
    )
    body = json.loads(response.text)
    assert body == {
        "path": "/v1/Conversations",
        "query": "a=1",
        "original_host": "conversations.twilio.com",
        "body": "B=2",
    }


def test_async_client_rewrites(echo_url: str) -> None:
    async def run() -> dict[str, str]:
        async with AsyncRedirectingHttpClient(echo_url) as client:
            response = await client.request("GET", "https://conversations.twilio.com/v1/Users")
            return dict(json.loads(response.text))

    body = asyncio.run(run())
    assert body["path"] == "/v1/Users" and body["original_host"] == "conversations.twilio.com"


@pytest.fixture(scope="module")
def mock() -> Iterator[tuple[TwilioCredentials, str]]:
    creds = generate_development_credentials().twilio
    service = MockTwilioService(creds)
    with ServerThread(service.app, name="mock-twilio") as server:
        yield creds, server.url
    service.close()


def test_async_sdk_drives_the_mock(mock: tuple[TwilioCredentials, str]) -> None:
    creds, url = mock
    assert creds.auth_token is not None
    token = creds.auth_token

    async def run() -> None:
        async with AsyncValidatingHttpClient(url) as http:
            client = Client(creds.account_sid, token, http_client=http)
            v1 = client.conversations.v1
            conv = await v1.conversations.create_async(friendly_name="async", unique_name="async")
            assert (await v1.conversations("async").fetch_async()).sid == conv.sid
            for identity in ("alice", "bob"):
                await v1.conversations(conv.sid).participants.create_async(identity=identity)
            with pytest.raises(TwilioRestException) as info:
                await v1.conversations(conv.sid).participants.create_async(identity="bob")
            assert info.value.code == 50433
            sent = []
            for i in range(120):
                author = "alice" if i % 2 else "bob"
                msg = await v1.conversations(conv.sid).messages.create_async(
                    author=author, body=f"{i}"
                )
                sent.append(msg.sid)
            stream = await v1.conversations(conv.sid).messages.stream_async(page_size=25)
            listed = [m async for m in stream]
            assert [m.sid for m in listed] == sent
            assert [m.index for m in listed] == list(range(120))
            newest = await v1.conversations(conv.sid).messages.list_async(order="desc", limit=10)
            assert [m.sid for m in newest] == sent[::-1][:10]
            edited = await v1.conversations(conv.sid).messages(sent[0]).update_async(body="edited")
            assert edited.body == "edited"
            assert await v1.conversations(conv.sid).messages(sent[1]).delete_async() is True
            with pytest.raises(TwilioRestException) as info:
                await v1.conversations(conv.sid).messages(sent[1]).fetch_async()
            assert (info.value.status, info.value.code) == (404, 20404)
            assert len(await v1.conversations(conv.sid).messages.list_async()) == 119
            assert len(http.exchanges) > 130  # every one of them validated against the spec

    asyncio.run(run())


def test_twilio_rest_client_async_helper(mock: tuple[TwilioCredentials, str]) -> None:
    creds, url = mock

    async def run() -> str:
        client = twilio_rest_client(
            creds.account_sid,
            creds.api_secret,
            username=creds.api_key_sid,
            base_url=url,
            async_=True,
        )
        try:
            service = await client.conversations.v1.services(creds.service_sid).fetch_async()
            assert validate_last(client.http_client).status == 200
            return str(service.sid)
        finally:
            await client.http_client.close()

    assert asyncio.run(run()) == creds.service_sid


def test_twilio_rest_client_sync_helper(mock: tuple[TwilioCredentials, str]) -> None:
    creds, url = mock
    assert creds.auth_token is not None
    client = twilio_rest_client(creds.account_sid, creds.auth_token, base_url=url)
    conv = client.conversations.v1.conversations.create(friendly_name="helper")
    assert validate_last(client.http_client).status == 201
    assert client.conversations.v1.conversations(conv.sid).fetch().friendly_name == "helper"
    assert validate_last(client.http_client).status == 200
