"""Property-based fuzz: Twilio access-token verification raises only TokenError."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_e2ee.credentials import generate_development_credentials
from twilio_e2ee.errors import TokenError
from twilio_e2ee.tokens.twilio_token import create_twilio_access_token, verify_twilio_access_token

CREDS = generate_development_credentials().twilio
VALID = create_twilio_access_token(CREDS, "alice")

# Hypothesis never draws lone surrogates unless asked; JSON escapes can carry them.
SURROGATE_RANGE = st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.just(CREDS.api_key_sid) | json_values,
        "sub": st.just(CREDS.account_sid) | json_values,
        "exp": st.integers() | json_values,
        "nbf": st.integers() | json_values,
        "jti": json_values,
        "grants": st.fixed_dictionaries(
            {},
            optional={
                "identity": st.text(max_size=300) | json_values,
                "chat": st.fixed_dictionaries(
                    {}, optional={"service_sid": st.just(CREDS.service_sid) | json_values}
                )
                | json_values,
            },
        )
        | json_values,
    },
)


def verify(token: Any) -> None:
    with contextlib.suppress(TokenError):
        verify_twilio_access_token(
            token, signing_keys={CREDS.api_key_sid: CREDS.api_secret}, account_sid=CREDS.account_sid
        )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """Sign any header/payload with the right secret (PyJWT's encoder would refuse odd headers)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    mac = hmac.new(CREDS.api_secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | st.text(SURROGATE_RANGE, max_size=20))
def test_random_text(text: str) -> None:
    verify(text)


@settings(max_examples=150, deadline=None)
@given(payloads, st.dictionaries(st.sampled_from(["alg", "cty", "typ", "kid", "twr"]), json_values))
def test_signed_with_the_right_secret(payload: dict[str, Any], headers: dict[str, Any]) -> None:
    verify(hs256({"alg": "HS256", "typ": "JWT", **headers}, payload))


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.characters(codec="ascii"))
def test_mutated_valid_token(position: int, replacement: str) -> None:
    token = VALID[:position] + replacement + VALID[position + 1 :]
    try:
        result = verify_twilio_access_token(
            token, signing_keys={CREDS.api_key_sid: CREDS.api_secret}, account_sid=CREDS.account_sid
        )
    except TokenError:
        return
    assert result.identity == "alice"
