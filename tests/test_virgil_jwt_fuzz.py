"""Property-based fuzz: Virgil JWT parsing and verification raise only TokenError."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_e2ee.credentials import generate_development_credentials
from twilio_e2ee.errors import TokenError
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt, parse_virgil_jwt, verify_virgil_jwt

APP = generate_development_credentials().virgil
VALID = generate_virgil_jwt(APP, "alice", additional_data={"k": "v"})

# Hypothesis never draws lone surrogates unless asked; JSON escapes can carry them.
SURROGATE_RANGE = st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.text(SURROGATE_RANGE, max_size=4),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
claims = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["VEDS512", "HS256", "none"]) | json_values,
        "kid": st.just(APP.app_key_id) | json_values,
        "typ": st.just("JWT") | json_values,
        "cty": st.just("virgil-jwt;v=1") | json_values,
        "iss": st.just(f"virgil-{APP.app_id}") | json_values,
        "sub": st.text(max_size=12).map(lambda s: "identity-" + s) | json_values,
        "iat": st.integers() | json_values,
        "exp": st.integers() | json_values,
        "ada": json_values,
    },
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def check(token: Any) -> None:
    with contextlib.suppress(TokenError):
        parse_virgil_jwt(token)
    with contextlib.suppress(TokenError):
        verify_virgil_jwt(token, app_public_key=APP.app_public_key, app_key_id=APP.app_key_id)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | st.text(SURROGATE_RANGE, max_size=20))
def test_random_text(text: str) -> None:
    check(text)


@settings(max_examples=150, deadline=None)
@given(claims, claims, st.binary(max_size=100))
def test_structured_tokens(header: dict[str, Any], body: dict[str, Any], sig: bytes) -> None:
    check(
        f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}.{b64url(sig)}"
    )


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.characters(codec="ascii"))
def test_mutated_valid_token(position: int, replacement: str) -> None:
    token = VALID[:position] + replacement + VALID[position + 1 :]
    try:
        jwt = verify_virgil_jwt(token, app_public_key=APP.app_public_key, app_key_id=APP.app_key_id)
    except TokenError:
        return
    assert token == VALID and jwt.identity == "alice"  # only the unchanged token verifies
