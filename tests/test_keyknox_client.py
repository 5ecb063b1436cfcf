"""Keyknox v2 client: wire shape, hash handshake, token retry and error mapping.

The server side here is a small in-test Keyknox over ``httpx.MockTransport`` that checks what the
client sends; the full round trip against the bundled mock service is in test_ethree_flow.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets

import httpx
import pytest

from twilio_e2ee.errors import AuthenticationError, MalformedInputError, ServiceError
from twilio_e2ee.keyknox import (
    AsyncKeyknoxClient,
    KeyknoxAuthenticationError,
    KeyknoxClient,
    KeyknoxEntryNotFoundError,
    KeyknoxError,
    KeyknoxHashMismatchError,
    KeyknoxUnavailableError,
)
from twilio_e2ee.keyknox.client import build_pull, build_push, parse_value


class Tokens:
    """A token source that counts forced reloads."""

    def __init__(self) -> None:
        self.n = 0
        self.forced = 0

    def get_token(self, force_reload: bool = False) -> str:
        if force_reload or self.n == 0:
            self.n += 1
            self.forced += force_reload
        return f"tok{self.n}"


class AsyncTokens(Tokens):
    async def get_token(self, force_reload: bool = False) -> str:  # type: ignore[override]
        return Tokens.get_token(self, force_reload)


class FakeKeyknox:
    """Enough of Keyknox v2 to check the client: entries, hashes, 50010, expired tokens."""

    def __init__(self, *, expire_first: int = 0) -> None:
        self.entries: dict[tuple[str, str, str, str], dict] = {}
        self.hashes: dict[tuple[str, str, str, str], str] = {}
        self.requests: list[httpx.Request] = []
        self.expire_first = expire_first

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        auth = request.headers.get("authorization", "")
        assert auth.startswith("Virgil tok"), auth
        assert request.headers["virgil-agent"].startswith("twilio_e2ee;python;")
        if self.expire_first:
            self.expire_first -= 1
            return httpx.Response(401, json={"code": 20304, "message": "token expired"})
        body = json.loads(request.content)
        owner = "alice"
        op = request.url.path.rsplit("/", 1)[1]
        if op == "push":
            where = (owner, body["root"], body["path"], body["key"])
            if request.headers.get("virgil-keyknox-previous-hash") != self.hashes.get(where):
                return httpx.Response(409, json={"code": 50010, "message": "invalid previous hash"})
            base64.b64decode(body["meta"], validate=True)
            base64.b64decode(body["value"], validate=True)
            self.entries[where] = {"owner": owner, **body}
            self.hashes[where] = base64.b64encode(secrets.token_bytes(16)).decode()
            return self._value(where)
        if op == "pull":
            where = (body.get("identity", owner), body["root"], body["path"], body["key"])
            return self._value(where)
        if op == "keys":
            return httpx.Response(
                200, json=sorted(k[3] for k in self.entries if k[1] == body.get("root"))
            )
        if op == "reset":
            where = (owner, body["root"], body["path"], body["key"])
            self.entries.pop(where, None)
            self.hashes.pop(where, None)
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"code": 10000, "message": "no such endpoint"})

    def _value(self, where):
        entry = self.entries.get(where)
        if entry is None:
            entry = dict(zip(("owner", "root", "path", "key"), where, strict=True))
            entry.update(identities=[], meta="", value="")
        headers = {"Virgil-Keyknox-Hash": self.hashes[where]} if where in self.hashes else {}
        return httpx.Response(200, json=entry, headers=headers)


def client_for(server: FakeKeyknox, tokens: Tokens | None = None) -> KeyknoxClient:
    http = httpx.Client(transport=httpx.MockTransport(server))
    return KeyknoxClient(tokens or Tokens(), "http://keyknox.test/", http_client=http)


def test_push_pull_keys_reset_round_trip():
    server = FakeKeyknox()
    kk = client_for(server)
    empty = kk.pull(root="e3kit", path="backup", key="default")
    assert empty.is_empty and empty.keyknox_hash is None
    pushed = kk.push(
        root="e3kit", path="backup", key="default", identities=["alice"], meta=b"m", value=b"v"
    )
    assert (pushed.meta, pushed.value, pushed.owner) == (b"m", b"v", "alice")
    assert pushed.keyknox_hash
    pulled = kk.pull(root="e3kit", path="backup", key="default")
    assert pulled.value == b"v" and pulled.keyknox_hash == pushed.keyknox_hash
    assert pulled.identities == ("alice",)
    assert kk.keys(root="e3kit") == ["default"]
    sent = json.loads(server.requests[1].content)
    assert sent == {
        "root": "e3kit",
        "path": "backup",
        "key": "default",
        "identities": ["alice"],
        "meta": "bQ==",
        "value": "dg==",
    }
    assert server.requests[1].url.path == "/keyknox/v2/push"
    kk.reset(root="e3kit", path="backup", key="default")
    assert kk.pull(root="e3kit", path="backup", key="default").is_empty


def test_hash_handshake_rejects_stale_writer():
    server = FakeKeyknox()
    kk = client_for(server)
    first = kk.push(root="r", path="p", key="k", identities=["alice"], meta=b"1", value=b"1")
    kk.push(
        root="r",
        path="p",
        key="k",
        identities=["alice"],
        meta=b"2",
        value=b"2",
        previous_hash=first.keyknox_hash,
    )
    assert server.requests[-1].headers["virgil-keyknox-previous-hash"] == first.keyknox_hash
    with pytest.raises(KeyknoxHashMismatchError, match="pull it again") as info:
        kk.push(
            root="r",
            path="p",
            key="k",
            identities=["alice"],
            meta=b"3",
            value=b"3",
            previous_hash=first.keyknox_hash,
        )
    assert info.value.code == 50010 and info.value.status == 409
    assert kk.pull(root="r", path="p", key="k").value == b"2"


def test_expired_token_is_retried_once_with_a_fresh_token():
    server = FakeKeyknox(expire_first=1)
    tokens = Tokens()
    kk = client_for(server, tokens)
    assert kk.pull(root="r", path="p", key="k").is_empty
    assert tokens.forced == 1
    assert [r.headers["authorization"] for r in server.requests] == ["Virgil tok1", "Virgil tok2"]
    server.expire_first = 2
    with pytest.raises(KeyknoxAuthenticationError) as info:
        kk.pull(root="r", path="p", key="k")
    assert isinstance(info.value, AuthenticationError) and info.value.code == 20304


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"code": 50017, "message": "no key data"}, KeyknoxEntryNotFoundError),
        (403, {"code": 20300, "message": "forbidden"}, KeyknoxAuthenticationError),
        (500, {"code": 10000, "message": "boom"}, KeyknoxUnavailableError),
        (429, None, KeyknoxUnavailableError),
        (400, {"code": 50021, "message": "identities not set"}, KeyknoxError),
        (200, ["not", "an", "object"], KeyknoxError),
        (200, {"owner": "a", "meta": "***", "value": ""}, KeyknoxError),
    ],
)
def test_error_answers_are_typed(status, body, error):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

    kk = KeyknoxClient(
        Tokens(), "http://k.test", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(error) as info:
        kk.pull(root="r", path="p", key="k")
    assert isinstance(info.value, ServiceError)
    if isinstance(body, dict) and "code" in body:
        assert info.value.code == body["code"]


def test_transport_failure_is_unavailable():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    kk = KeyknoxClient(
        Tokens(), "http://k.test", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(KeyknoxUnavailableError, match="cannot reach Keyknox"):
        kk.keys()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"root": "", "path": "p", "key": "k"},
        {"root": None, "path": "p", "key": "k"},
        {"root": "r", "path": "p\n", "key": "k"},
        {"root": "r", "path": "p", "key": 7},
    ],
)
def test_bad_names_are_refused_before_sending(kwargs):
    with pytest.raises(MalformedInputError):
        build_pull(**kwargs)


@pytest.mark.parametrize(
    ("identities", "meta"), [([], b"m"), ("alice", b"m"), (["alice"], "text"), ([None], b"m")]
)
def test_bad_push_arguments_are_refused(identities, meta):
    with pytest.raises(MalformedInputError):
        build_push(root="r", path="p", key="k", identities=identities, meta=meta, value=b"")


def test_bad_api_url():
    with pytest.raises(MalformedInputError):
        KeyknoxClient(Tokens(), "ftp://nope")


def test_parse_value_reads_hash_header_case_insensitively():
    body = json.dumps({"owner": "o", "root": "r", "path": "p", "key": "k", "meta": "", "value": ""})
    value = parse_value(200, {"virgil-keyknox-hash": "abc="}, body.encode())
    assert value.keyknox_hash == "abc=" and value.is_empty


def test_async_client_same_protocol():
    server = FakeKeyknox(expire_first=1)
    tokens = AsyncTokens()

    async def main() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(server))
        async with AsyncKeyknoxClient(tokens, "http://k.test", http_client=http) as kk:
            first = await kk.push(
                root="r", path="p", key="k", identities=["alice"], meta=b"1", value=b"x"
            )
            assert (await kk.pull(root="r", path="p", key="k")).value == b"x"
            with pytest.raises(KeyknoxHashMismatchError):
                await kk.push(
                    root="r", path="p", key="k", identities=["alice"], meta=b"1", value=b"y"
                )
            assert await kk.keys(root="r") == ["k"]
            await kk.reset(root="r", path="p", key="k")
            assert first.keyknox_hash
        await http.aclose()

    asyncio.run(main())
    assert tokens.forced == 1


def test_against_the_bundled_mock(offline_stack):
    """The same client against the mock Keyknox v2 of the offline stack, two users."""
    from twilio_e2ee.tokens.providers import CachingJwtProvider
    from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt

    app = offline_stack.credentials.virgil
    tag = secrets.token_hex(4)
    alice_id, bob_id = f"alice-{tag}", f"bob-{tag}"
    alice = KeyknoxClient(
        CachingJwtProvider(lambda: generate_virgil_jwt(app, alice_id)), offline_stack.cards_url
    )
    bob = KeyknoxClient(
        CachingJwtProvider(lambda: generate_virgil_jwt(app, bob_id)), offline_stack.cards_url
    )
    where = {"root": "e3kit", "path": "backup", "key": "default"}
    empty = alice.pull(**where)
    assert empty.is_empty
    first = alice.push(**where, identities=[alice_id], meta=b"m1", value=b"v1")
    assert first.owner == alice_id and first.keyknox_hash
    with pytest.raises(KeyknoxHashMismatchError):
        alice.push(**where, identities=[alice_id], meta=b"m2", value=b"v2")  # no previous hash
    second = alice.push(
        **where,
        identities=[alice_id, bob_id],
        meta=b"m2",
        value=b"v2",
        previous_hash=first.keyknox_hash,
    )
    assert second.keyknox_hash != first.keyknox_hash
    with pytest.raises(KeyknoxHashMismatchError):
        alice.push(
            **where,
            identities=[alice_id],
            meta=b"m3",
            value=b"v3",
            previous_hash=first.keyknox_hash,
        )
    shared = bob.pull(**where, identity=alice_id)  # bob is on the access list now
    assert (shared.meta, shared.value) == (b"m2", b"v2")
    assert alice.keys(root="e3kit", path="backup") == ["default"]
    alice.reset(**where)
    assert alice.pull(**where).is_empty
    with pytest.raises(KeyknoxEntryNotFoundError) as info:
        bob.pull(**where, identity=alice_id)
    assert info.value.code == 50017
    alice.close()
    bob.close()


@pytest.mark.parametrize("token", ["tök", "tok\r\nX-Injected: 1", "", 42])
def test_unusable_tokens_are_refused_before_sending(token):
    server = FakeKeyknox()
    transport = httpx.MockTransport(server)

    class Bad:
        def get_token(self, force_reload: bool = False) -> object:
            return token

    class AsyncBad:
        async def get_token(self, force_reload: bool = False) -> object:
            return token

    kk = KeyknoxClient(Bad(), "http://k.test", http_client=httpx.Client(transport=transport))
    with pytest.raises(KeyknoxAuthenticationError, match="token"):
        kk.keys()

    async def run() -> None:
        client = httpx.AsyncClient(transport=transport)
        with pytest.raises(KeyknoxAuthenticationError, match="token"):
            await AsyncKeyknoxClient(AsyncBad(), "http://k.test", http_client=client).keys()

    asyncio.run(run())
    assert server.requests == []
