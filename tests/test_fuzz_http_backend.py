"""Property-based HTTP fuzzing of the token backend (``twilio_e2ee.backend``).

Random bodies and headers for ``/signup``, ``/authenticate``, ``/virgil-jwt``, ``/twilio-jwt``,
``/logout`` (and ``/me``, ``/healthz``, unknown paths, wrong methods, CORS preflights), in
production and development mode. Properties: never a 5xx; every error is a JSON
``{"error": str, "code": str}``; a refused request creates, changes or revokes no user or
session and mints no token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.fuzz_http import (
    GARBAGE_BYTES,
    FuzzRequest,
    fuzz_settings,
    json_body,
    json_values,
    weighted,
)
from twilio_e2ee.backend import Backend, BackendConfig, create_backend_app
from twilio_e2ee.credentials import generate_development_credentials

PASSWORD = "correct horse battery"
GOOD = "<live session token>"  # replaced by alice's current token when the request is sent


@dataclass(repr=False)
class Harness:
    backend: Backend
    client: TestClient
    token: str

    def live_token(self) -> str:
        """Alice's session token; a new one when a fuzzed /logout has ended the last one."""
        try:
            self.backend.sessions.lookup(self.token)
        except Exception:
            self.token = self.backend.sessions.create("alice").token
        return self.token


@pytest.fixture(scope="module", params=[False, True], ids=["production", "development"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    config = BackendConfig(
        generate_development_credentials(),
        development=request.param,
        password_hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
    app = create_backend_app(config)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/signup", json={"identity": "alice", "password": PASSWORD})
        assert r.status_code == 201, r.text
        yield Harness(app.state.backend, client, r.json()["authToken"])
    app.state.backend.db.close()


def snapshot(backend: Backend) -> Any:
    """Every user and session row, and the mint counters."""
    with backend.db.transaction() as conn:
        users = conn.execute("SELECT * FROM users ORDER BY 1").fetchall()
        sessions = conn.execute("SELECT * FROM sessions ORDER BY 1").fetchall()
    return users, sessions, dict(backend.mints)


# --- the request strategy ----------------------------------------------------------------------

identities = st.sampled_from(
    ["alice", "bob", "", " alice", "a\u200bb", "x" * 300, "\x00", "carol"]
) | st.text(max_size=20)
passwords = st.sampled_from([PASSWORD, "short", "x" * 1025, "\ud800" * 8, "wrong password!"]) | (
    st.text(min_size=8, max_size=20)
)
field_values = identities | passwords | json_values
# Mostly {identity, password} (so validation and Argon2 run), else missing / extra / odd fields.
bodies = weighted(
    (4, st.fixed_dictionaries({"identity": identities, "password": passwords})),
    (
        1,
        st.fixed_dictionaries(
            {}, optional={"identity": identities | json_values, "password": passwords | json_values}
        ),
    ),
    (
        1,
        st.dictionaries(
            st.sampled_from(["identity", "password", "allSessions", "other"]),
            field_values,
            max_size=4,
        ),
    ),
    (1, st.fixed_dictionaries({"allSessions": st.booleans() | json_values})),
)
ROUTES = {
    "/signup": "POST",
    "/authenticate": "POST",
    "/virgil-jwt": "GET",
    "/twilio-jwt": "GET",
    "/logout": "POST",
    "/me": "GET",
    "/healthz": "GET",
    "/admin": "GET",
}


@st.composite
def requests(draw: st.DrawFn) -> FuzzRequest:
    path = draw(st.sampled_from(sorted(ROUTES)))
    method = draw(st.sampled_from([ROUTES[path]] * 6 + ["GET", "POST", "PUT", "DELETE"]))
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain"]))}
    auth = draw(
        st.sampled_from(
            [f"Bearer {GOOD}"] * 4
            + ["Bearer ", "Bearer unknown-token", "Bearer " + "x" * 600, "Basic YTpi", "Bearer"]
        )
        | st.text(max_size=30).map(lambda t: "Bearer " + t.strip())
        | st.none()
    )
    if auth is not None:
        headers["Authorization"] = auth
    if draw(st.integers(0, 9)) == 0:  # a CORS preflight, allowed or not
        method = "OPTIONS"
        headers["Origin"] = draw(st.sampled_from(["https://app.example", "null"]))
        headers["Access-Control-Request-Method"] = draw(st.sampled_from(["POST", "DELETE", "Ä"]))
    kind = draw(st.sampled_from(["typed"] * 6 + ["json", "garbage", "huge", "empty"]))
    if kind == "typed":
        content = json_body(draw(bodies))
    elif kind == "json":
        content = json_body(draw(json_values))
    elif kind == "garbage":
        content = draw(GARBAGE_BYTES)
    elif kind == "huge":
        content = b'{"identity": "' + b"a" * (16 * 1024) + b'"}'
    else:
        content = b""
    return FuzzRequest(method, path, headers, content)


# --- the property ------------------------------------------------------------------------------


def check_response(req: FuzzRequest, status: int, text: str) -> None:
    assert status < 500, f"{req!r} -> {status}: {text[:300]}"
    if status >= 400:
        body = json.loads(text)
        assert isinstance(body, dict) and body.keys() == {"error", "code"}, body
        assert isinstance(body["error"], str) and isinstance(body["code"], str), body


def test_bad_input_never_500s_and_refusals_change_nothing(harness: Harness) -> None:
    seen: dict[str, int] = {}

    @fuzz_settings(500)
    @given(req=requests())
    def prop(req: FuzzRequest) -> None:
        # Raw UTF-8 header bytes: non-ASCII and control characters reach the app as sent.
        headers = {
            k: v.replace(GOOD, harness.live_token()).encode("utf-8", "surrogatepass")
            for k, v in req.headers.items()
        }
        before = snapshot(harness.backend)
        response = harness.client.request(
            req.method, req.path, headers=headers, content=req.content
        )
        status = response.status_code
        seen[f"{status // 100}xx"] = seen.get(f"{status // 100}xx", 0) + 1
        check_response(req, status, response.text)
        if status >= 400:
            assert snapshot(harness.backend) == before, f"refused {req!r} changed state"

    prop()
    print(f"backend ({harness.backend.mode}) fuzz outcomes: {seen}")
    assert seen.get("4xx", 0) > 0 and seen.get("2xx", 0) > 0, seen
