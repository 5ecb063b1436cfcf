"""Token backend: real authentication in front of the Virgil sample's endpoints.

Every rejected request must end with a JSON 4xx, change nothing, and never run the handler
(proved by counting token mints and Argon2 verifications).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from twilio_e2ee.backend import Backend, BackendConfig, create_backend_app
from twilio_e2ee.backend.users import (
    Database,
    InvalidCredentialsError,
    InvalidInputError,
    UserStore,
)
from twilio_e2ee.credentials import StackCredentials, generate_development_credentials
from twilio_e2ee.tokens.twilio_token import verify_twilio_access_token_with
from twilio_e2ee.tokens.virgil_jwt import verify_virgil_jwt

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingHasher(PasswordHasher):
    """Argon2id with test-sized parameters, counting verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifications += 1
        return bool(super().verify(hash, password))


class AppClient:
    """Calls the ASGI app in-process (httpx ASGITransport) from a given client address."""

    def __init__(self, app: Any, address: str = "203.0.113.1") -> None:
        self.app = app
        self.address = address

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(
                app=self.app, client=(self.address, 40000), raise_app_exceptions=False
            )
            async with httpx.AsyncClient(transport=transport, base_url="http://backend") as c:
                return await c.request(method, path, **kw)

        return asyncio.run(go())

    def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        if token is not None:
            kw.setdefault("headers", {})["Authorization"] = f"Bearer {token}"
        return self.request("GET", path, **kw)

    def post(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        if token is not None:
            kw.setdefault("headers", {})["Authorization"] = f"Bearer {token}"
        return self.request("POST", path, **kw)

    def from_address(self, address: str) -> AppClient:
        return AppClient(self.app, address)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def creds() -> StackCredentials:
    return generate_development_credentials()


def make(
    creds: StackCredentials, clock: Clock, **kw: Any
) -> tuple[AppClient, Backend, CountingHasher]:
    hasher = CountingHasher()
    config = BackendConfig(creds, password_hasher=hasher, clock=clock, **kw)
    app = create_backend_app(config)
    return AppClient(app), app.state.backend, hasher


@pytest.fixture
def backend(creds: StackCredentials, clock: Clock) -> tuple[AppClient, Backend, CountingHasher]:
    return make(creds, clock)


def signup(client: AppClient, identity: str = "alice", password: str = PASSWORD) -> str:
    r = client.post("/signup", json={"identity": identity, "password": password})
    assert r.status_code == 201, r.text
    return str(r.json()["authToken"])


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    if code is not None:
        assert body["code"] == code
    return body  # type: ignore[no-any-return]


# --- happy path -------------------------------------------------------------------------------


def test_signup_login_and_both_tokens(backend: Any, creds: StackCredentials, clock: Clock) -> None:
    client, state, _ = backend
    signup(client)
    r = client.post("/authenticate", json={"identity": "alice", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"authToken", "identity", "expiresAt"} and body["identity"] == "alice"
    token = body["authToken"]
    virgil = client.get("/virgil-jwt", token).json()["virgilToken"]
    jwt = verify_virgil_jwt(
        virgil,
        app_public_key=creds.virgil.app_public_key,
        app_key_id=creds.virgil.app_key_id,
        app_id=creds.virgil.app_id,
        now=clock.now,
    )
    assert jwt.identity == "alice" and jwt.expires_at - jwt.issued_at == 1200
    assert jwt.issued_at == int(clock.now)  # minted on the backend's clock
    twilio = client.get("/twilio-jwt", token).json()["twilioToken"]
    access = verify_twilio_access_token_with(twilio, creds.twilio, now=clock.now)
    assert access.identity == "alice" and access.service_sid == creds.twilio.service_sid
    assert access.expires_at - (access.not_before or 0) == 3600
    assert client.get("/me", token).json()["identity"] == "alice"
    assert state.mints == {"virgil": 1, "twilio": 1}


def test_passwords_stored_as_argon2id(tmp_path: Path, creds: StackCredentials) -> None:
    db = tmp_path / "users.sqlite"
    client = AppClient(create_backend_app(BackendConfig(creds, db_path=db)))  # default params
    signup(client, "alice", "a very secret passphrase")
    stored = sqlite3.connect(db).execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    raw = db.read_bytes() + (tmp_path / "users.sqlite-wal").read_bytes()
    assert b"a very secret passphrase" not in raw
    tokens = sqlite3.connect(db).execute("SELECT token_sha256 FROM sessions").fetchall()
    assert len(tokens) == 1 and len(tokens[0][0]) == 64  # only a digest of the session token


def test_state_survives_restart_with_sqlite_file(tmp_path: Path, creds: StackCredentials) -> None:
    clock = Clock()
    db = tmp_path / "b.sqlite"
    first, _, _ = make(creds, clock, db_path=db)
    token = signup(first)
    second, _, _ = make(creds, clock, db_path=str(db))
    assert second.get("/me", token).status_code == 200
    r = second.post("/authenticate", json={"identity": "alice", "password": PASSWORD})
    assert r.status_code == 200
    assert_error(second.post("/signup", json={"identity": "alice", "password": "x" * 9}), 409)


# --- rejected requests: 4xx JSON, nothing changed, handler never run ------------------------------


def test_wrong_password_and_unknown_identity(backend: Any) -> None:
    client, state, hasher = backend
    signup(client)
    wrong = assert_error(
        client.post("/authenticate", json={"identity": "alice", "password": "nope-nope"}),
        401,
        "invalid_credentials",
    )
    unknown = assert_error(
        client.post("/authenticate", json={"identity": "zed", "password": "nope-nope"}),
        401,
        "invalid_credentials",
    )
    assert wrong == unknown  # no user enumeration
    assert hasher.verifications == 2  # the unknown identity still costs one Argon2 check
    assert state.sessions.live_count() == 1  # only the sign-up session


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": ""}, "missing_token"),
        ({"Authorization": "Basic YWxpY2U6cHc="}, "malformed_token"),
        ({"Authorization": "Bearer"}, "malformed_token"),
        ({"Authorization": "Bearer " + "x" * 600}, "malformed_token"),
        ({"Authorization": "Bearer not-a-session"}, "invalid_session"),
    ],
)
def test_bad_authorization_refused_before_handler(
    backend: Any, headers: dict[str, str], code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, state, _ = backend
    signup(client)
    calls: list[str] = []
    import twilio_e2ee.backend.app as app_module

    monkeypatch.setattr(app_module, "generate_virgil_jwt", lambda *a, **k: calls.append("v"))
    monkeypatch.setattr(app_module, "create_twilio_access_token", lambda *a, **k: calls.append("t"))
    for path in ("/virgil-jwt", "/twilio-jwt", "/me"):
        r = client.get(path, headers=headers)
        assert_error(r, 401, code)
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(client.post("/logout", headers=headers), 401, code)
    assert calls == [] and sum(state.mints.values()) == 0
    assert state.sessions.live_count() == 1


def test_expired_session(backend: Any, clock: Clock) -> None:
    client, state, _ = backend
    token = signup(client)
    clock.now += 12 * 3600 - 1
    assert client.get("/virgil-jwt", token).status_code == 200
    clock.now += 2
    assert_error(client.get("/virgil-jwt", token), 401, "session_expired")
    assert_error(client.get("/twilio-jwt", token), 401, "session_expired")
    assert state.mints == {"virgil": 1}


def test_logout_revokes(backend: Any) -> None:
    client, state, _ = backend
    token = signup(client)
    other = client.post("/authenticate", json={"identity": "alice", "password": PASSWORD})
    other_token = other.json()["authToken"]
    assert client.post("/logout", token).json() == {"revoked": 1}
    assert_error(client.get("/virgil-jwt", token), 401, "session_revoked")
    assert_error(client.post("/logout", token), 401, "session_revoked")
    assert client.get("/virgil-jwt", other_token).status_code == 200  # other session unaffected
    third = client.post("/authenticate", json={"identity": "alice", "password": PASSWORD})
    r = client.post("/logout", other_token, json={"allSessions": True})
    assert r.json() == {"revoked": 2}
    assert_error(client.get("/me", third.json()["authToken"]), 401, "session_revoked")
    assert state.mints == {"virgil": 1}
    assert_error(client.post("/logout", token, json={"allSessions": "yes"}), 401)


def test_logout_bad_body_changes_nothing(backend: Any) -> None:
    client, state, _ = backend
    token = signup(client)
    assert_error(client.post("/logout", token, json={"allSessions": "yes"}), 400, "invalid_request")
    assert_error(client.post("/logout", token, content=b"{oops"), 400, "malformed_json")
    assert state.sessions.live_count() == 1


@pytest.mark.parametrize(
    "inject",
    [
        {"params": {"identity": "bob"}},
        {"json": {"identity": "bob"}},
        {"headers": {"X-Identity": "bob", "Cookie": "identity=bob"}},
    ],
)
def test_identity_injection_ignored(
    backend: Any, creds: StackCredentials, clock: Clock, inject: Any
) -> None:
    client, _, _ = backend
    token = signup(client)
    signup(client, "bob")
    virgil = client.get("/virgil-jwt", token, **inject).json()["virgilToken"]
    assert (
        verify_virgil_jwt(
            virgil,
            app_public_key=creds.virgil.app_public_key,
            app_key_id=creds.virgil.app_key_id,
            now=clock.now,
        ).identity
        == "alice"
    )
    twilio = client.get("/twilio-jwt", token, **inject).json()["twilioToken"]
    assert verify_twilio_access_token_with(twilio, creds.twilio, now=clock.now).identity == "alice"


@pytest.mark.parametrize(
    ("kw", "status", "code"),
    [
        ({"content": b"{not json"}, 400, "malformed_json"),
        ({"content": b""}, 400, "malformed_json"),
        ({"content": b"\xff\xfe\x00"}, 400, "malformed_json"),
        ({"content": b"[1, 2]"}, 400, "malformed_json"),
        ({"content": b'"alice"'}, 400, "malformed_json"),
        ({"content": b"[" * 10_000}, 400, "malformed_json"),
        ({"content": b'{"identity": "a", "password": "\\ud800 12345"}'}, 400, "malformed_json"),
        ({"content": '{"identity": "alice"}'.encode("utf-16")}, 400, "malformed_json"),
        ({"content": b'{"identity": "' + b"a" * 20_000 + b'"}'}, 413, "body_too_large"),
        ({"json": {"password": PASSWORD}}, 400, "invalid_request"),
        ({"json": {"identity": 5, "password": PASSWORD}}, 400, "invalid_request"),
        ({"json": {"identity": "", "password": PASSWORD}}, 400, "invalid_request"),
        ({"json": {"identity": "x" * 257, "password": PASSWORD}}, 400, "invalid_request"),
        ({"json": {"identity": "al\nice", "password": PASSWORD}}, 400, "invalid_request"),
        ({"json": {"identity": "al\u200bice", "password": PASSWORD}}, 400, "invalid_request"),
        ({"json": {"identity": "\u202eecila", "password": PASSWORD}}, 400, "invalid_request"),
        ({"json": {"identity": " alice", "password": PASSWORD}}, 400, "invalid_request"),
        ({"json": {"identity": "alice", "password": None}}, 400, "invalid_request"),
        ({"json": {"identity": "alice", "password": ["x"]}}, 400, "invalid_request"),
    ],
)
@pytest.mark.parametrize("path", ["/signup", "/authenticate"])
def test_bad_bodies_refused_nothing_changed(
    backend: Any, path: str, kw: dict[str, Any], status: int, code: str
) -> None:
    client, state, hasher = backend
    assert_error(client.post(path, **kw), status, code)
    assert state.users.count() == 0 and state.sessions.live_count() == 0
    assert hasher.verifications == 0


@pytest.mark.parametrize("length", [b"abc", b"\xb2", b"-1"])  # \xb2 is "²": isdigit() is True
def test_invalid_content_length_is_400(backend: Any, length: bytes) -> None:
    client, state, hasher = backend
    r = client.post("/signup", content=b"{}", headers=[(b"content-length", length)])
    assert_error(r, 400, "invalid_request")
    assert state.users.count() == 0 and hasher.verifications == 0


def test_user_store_refuses_unencodable_passwords(tmp_path: Path) -> None:
    store = UserStore(Database(tmp_path / "u.db"), CountingHasher(), clock=Clock())
    with pytest.raises(InvalidInputError):
        store.create("alice", "\ud800 long enough")
    with pytest.raises(InvalidInputError):
        store.create("al\nice", PASSWORD)
    store.create("alice", PASSWORD)
    with pytest.raises(InvalidCredentialsError):
        store.authenticate("alice", "\ud800 long enough")
    assert store.count() == 1


def test_signup_rules(backend: Any) -> None:
    client, state, _ = backend
    assert_error(
        client.post("/signup", json={"identity": "alice", "password": "short"}),
        400,
        "invalid_request",
    )
    assert_error(
        client.post("/signup", json={"identity": "alice", "password": "p" * 1025}),
        400,
        "invalid_request",
    )
    signup(client, "ålice 🐍 " + "x" * 200)
    signup(client)
    before = state.users.password_hash("alice")
    assert_error(
        client.post("/signup", json={"identity": "alice", "password": "another password"}),
        409,
        "identity_taken",
    )
    assert state.users.password_hash("alice") == before and state.users.count() == 2
    r = client.post("/authenticate", json={"identity": "alice", "password": "another password"})
    assert_error(r, 401)


def test_not_found_and_method_not_allowed_are_json(backend: Any) -> None:
    client, _, _ = backend
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/signup"), 405, "method_not_allowed")
    assert_error(client.post("/virgil-jwt"), 405, "method_not_allowed")


# --- rate limiting --------------------------------------------------------------------------------


def test_failed_logins_rate_limited_per_identity(backend: Any, clock: Clock) -> None:
    client, _, hasher = backend
    signup(client)
    bad = {"identity": "alice", "password": "wrong password"}
    for _ in range(5):
        assert_error(client.post("/authenticate", json=bad), 401)
    assert hasher.verifications == 5
    r = client.post("/authenticate", json={"identity": "alice", "password": PASSWORD})
    assert_error(r, 429, "too_many_attempts")
    assert 1 <= int(r.headers["retry-after"]) <= 15 * 60
    # Another address is limited too (per identity), but other identities are not.
    other = client.from_address("198.51.100.7")
    assert_error(other.post("/authenticate", json=bad), 429)
    signup(other, "bob")
    assert other.post("/authenticate", json={"identity": "bob", "password": PASSWORD}).is_success
    assert hasher.verifications == 6  # limited attempts never reached Argon2
    clock.now += 15 * 60 + 1
    r = client.post("/authenticate", json={"identity": "alice", "password": PASSWORD})
    assert r.status_code == 200


def test_concurrent_wrong_passwords_cannot_outrun_the_limit(backend: Any) -> None:
    """The limit is checked and the attempt counted in one step: a burst of parallel guesses
    gets no more Argon2 verifications than the limit allows."""
    client, _, hasher = backend
    signup(client)
    bad = {"identity": "alice", "password": "wrong password"}

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=client.app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://backend") as c:
            answers = await asyncio.gather(*(c.post("/authenticate", json=bad) for _ in range(20)))
        return sorted(r.status_code for r in answers)

    assert asyncio.run(burst()) == [401] * 5 + [429] * 15
    assert hasher.verifications == 5
    # The 15 refused attempts were not counted against the address (its limit is 20).
    same_address = client.from_address("203.0.113.9")
    again = same_address.post("/authenticate", json={**bad, "identity": "bob"})
    assert again.status_code == 401 and hasher.verifications == 6


def test_failed_logins_rate_limited_per_address(creds: StackCredentials, clock: Clock) -> None:
    client, _, hasher = make(creds, clock, max_failed_logins_per_address=3)
    signup(client, "victim")
    for name in ("a", "b", "c"):
        assert_error(client.post("/authenticate", json={"identity": name, "password": "x"}), 401)
    r = client.post("/authenticate", json={"identity": "victim", "password": PASSWORD})
    assert_error(r, 429, "too_many_attempts")
    assert "retry-after" in r.headers
    elsewhere = client.from_address("192.0.2.50")
    assert elsewhere.post(
        "/authenticate", json={"identity": "victim", "password": PASSWORD}
    ).is_success
    assert hasher.verifications == 4


def test_successful_login_resets_identity_counter(backend: Any) -> None:
    client, _, _ = backend
    signup(client)
    for _ in range(3):
        for _ in range(4):
            client.post("/authenticate", json={"identity": "alice", "password": "wrong one"})
        ok = client.post("/authenticate", json={"identity": "alice", "password": PASSWORD})
        assert ok.status_code == 200


# --- modes ----------------------------------------------------------------------------------------


def test_production_never_accepts_passwordless(backend: Any) -> None:
    client, state, _ = backend
    assert client.get("/healthz").json() == {"status": "ok", "mode": "production"}
    assert_error(client.post("/authenticate", json={"identity": "alice"}), 400, "password_required")
    signup(client, "bob")
    assert_error(client.post("/authenticate", json={"identity": "bob"}), 400, "password_required")
    assert state.sessions.live_count() == 1


def test_development_accepts_sample_signin(
    creds: StackCredentials, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="twilio_e2ee.backend"):
        client, state, _ = make(creds, clock, development=True)
    assert "DEVELOPMENT mode" in caplog.text
    assert client.get("/healthz").json()["mode"] == "development"
    r = client.post("/authenticate", json={"identity": "alice"})
    assert r.status_code == 200
    token = r.json()["authToken"]
    assert client.get("/virgil-jwt", token).status_code == 200
    # An identity with a password cannot be taken over password-lessly.
    signup(client, "bob")
    assert_error(client.post("/authenticate", json={"identity": "bob"}), 401, "password_required")
    assert_error(client.post("/authenticate", json={"identity": ""}), 400)
    assert state.mints == {"virgil": 1}
    # Claiming the identity with a password ends its password-less sessions.
    signup(client, "alice")
    assert_error(client.get("/virgil-jwt", token), 401, "session_revoked")


def test_concurrent_signups_for_one_identity(backend: Any) -> None:
    client, state, _ = backend

    async def race() -> list[int]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://backend") as c:
            body = {"identity": "alice", "password": PASSWORD}
            answers = await asyncio.gather(*(c.post("/signup", json=body) for _ in range(6)))
        return sorted(r.status_code for r in answers)

    assert asyncio.run(race()) == [201, 409, 409, 409, 409, 409]
    assert state.users.count() == 1 and state.sessions.live_count() == 1


def test_internal_errors_are_json_500(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, _ = backend
    token = signup(client)
    import twilio_e2ee.backend.app as app_module

    def boom(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(app_module, "generate_virgil_jwt", boom)
    r = client.get("/virgil-jwt", token)
    assert r.status_code == 500
    assert r.json() == {"error": "internal server error", "code": "internal"}


def test_cors_like_the_sample(backend: Any) -> None:
    client, _, _ = backend
    r = client.request(
        "OPTIONS",
        "/virgil-jwt",
        headers={
            "Origin": "http://localhost:8080",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "http://localhost:8080")


# --- storage --------------------------------------------------------------------------------------


def test_user_store_is_thread_safe() -> None:
    db = Database(":memory:")
    store = UserStore(
        db, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1), clock=Clock()
    )
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(5):
                store.create(f"user-{n}-{i}", PASSWORD)
                store.authenticate(f"user-{n}-{i}", PASSWORD)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and store.count() == 40


def test_bad_db_path_is_configuration_error(tmp_path: Path, creds: StackCredentials) -> None:
    from twilio_e2ee.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="does not exist"):
        create_backend_app(BackendConfig(creds, db_path=tmp_path / "missing" / "db.sqlite"))
