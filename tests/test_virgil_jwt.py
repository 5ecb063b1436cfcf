"""Virgil JWT (VEDS512): Virgil's vectors STC-22/STC-23, and refusal of bad tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from twilio_e2ee.credentials import VirgilAppCredentials, generate_development_credentials
from twilio_e2ee.crypto import generate_key_pair, import_private_key, import_public_key, sign
from twilio_e2ee.errors import TokenError, TokenExpiredError
from twilio_e2ee.tokens.virgil_jwt import (
    MalformedTokenError,
    encode_virgil_jwt,
    generate_virgil_jwt,
    parse_virgil_jwt,
    verify_virgil_jwt,
)

STC22_IAT = 1518513309
STC22_EXP = 1518513909


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


@pytest.fixture
def app() -> VirgilAppCredentials:
    return generate_development_credentials().virgil


def stc23_app(vectors: dict[str, Any]) -> VirgilAppCredentials:
    sdk = vectors["sdk"]
    return VirgilAppCredentials(
        app_id=sdk["STC-23.app_id"],
        app_key=import_private_key(sdk["STC-23.api_private_key_base64"]),
        app_key_id=sdk["STC-23.api_key_id"],
    )


def test_stc22_verifies(vectors: dict[str, Any]) -> None:
    sdk = vectors["sdk"]
    jwt = verify_virgil_jwt(
        sdk["STC-22.jwt"],
        app_public_key=import_public_key(sdk["STC-22.api_public_key_base64"]),
        app_key_id=sdk["STC-22.api_key_id"],
        app_id=sdk["STC-23.app_id"],
        now=STC22_IAT + 60,
    )
    assert jwt.identity == "some_identity"
    assert jwt.app_id == sdk["STC-23.app_id"]
    assert jwt.key_id == sdk["STC-22.api_key_id"]
    assert (jwt.issued_at, jwt.expires_at) == (STC22_IAT, STC22_EXP)
    assert jwt.additional_data == {"username": "some_username"}
    assert jwt.raw == sdk["STC-22.jwt"]


def test_stc22_expired_now(vectors: dict[str, Any]) -> None:
    sdk = vectors["sdk"]
    with pytest.raises(TokenExpiredError):
        verify_virgil_jwt(
            sdk["STC-22.jwt"],
            app_public_key=import_public_key(sdk["STC-22.api_public_key_base64"]),
            app_key_id=sdk["STC-22.api_key_id"],
        )


def test_stc23_generate_then_verify(vectors: dict[str, Any]) -> None:
    sdk = vectors["sdk"]
    app = stc23_app(vectors)
    token = generate_virgil_jwt(
        app, "some_identity", ttl=600, additional_data={"username": "some_username"}, now=STC22_IAT
    )
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert list(header) == ["alg", "kid", "typ", "cty"]  # the JS generator's order
    jwt = verify_virgil_jwt(
        token,
        app_public_key=import_public_key(sdk["STC-22.api_public_key_base64"]),
        app_key_id=sdk["STC-23.api_key_id"],
        app_id=sdk["STC-23.app_id"],
        now=STC22_IAT,
    )
    assert (jwt.identity, jwt.issued_at, jwt.expires_at) == ("some_identity", STC22_IAT, STC22_EXP)
    # Same claims, JS key order: header and body differ from STC-22 (sorted keys) only in order.
    vector = parse_virgil_jwt(sdk["STC-22.jwt"])
    assert jwt.header == vector.header and jwt.body == vector.body


def test_stc22_reproduced_byte_for_byte(vectors: dict[str, Any]) -> None:
    """Ed25519 is deterministic: the same claims in the vector's key order give its exact token."""
    sdk = vectors["sdk"]
    vector = parse_virgil_jwt(sdk["STC-22.jwt"])
    token = encode_virgil_jwt(
        dict(sorted(vector.header.items())),
        dict(sorted(vector.body.items())),
        stc23_app(vectors).app_key,
    )
    assert token == sdk["STC-22.jwt"]


def test_generate_defaults(app: VirgilAppCredentials) -> None:
    token = generate_virgil_jwt(app, "alice", now=1_700_000_000.7)
    jwt = verify_virgil_jwt(
        token,
        app_public_key=app.app_public_key,
        app_key_id=app.app_key_id,
        app_id=app.app_id,
        now=1_700_000_001,
    )
    assert jwt.identity == "alice"
    assert jwt.issued_at == 1_700_000_000
    assert jwt.expires_at - jwt.issued_at == 1200
    assert jwt.additional_data is None and "ada" not in jwt.body
    assert list(jwt.body) == ["iss", "sub", "iat", "exp"]
    assert len(jwt.signature) == 83


def test_unicode_identity_round_trip(app: VirgilAppCredentials) -> None:
    token = generate_virgil_jwt(app, "ålice 🐍", additional_data={"k": "v"})
    jwt = verify_virgil_jwt(token, app_public_key=app.app_public_key, app_key_id=app.app_key_id)
    assert jwt.identity == "ålice 🐍" and jwt.additional_data == {"k": "v"}
    body = base64.urlsafe_b64decode(token.split(".")[1] + "==")
    assert body.isascii() and b"\\u00e5lice \\ud83d\\udc0d" in body  # readable by the JS SDK


def test_latin1_parts_as_the_js_sdk_writes_them(app: VirgilAppCredentials) -> None:
    header = {"alg": "VEDS512", "kid": app.app_key_id, "typ": "JWT", "cty": "virgil-jwt;v=1"}
    body = '{"iss":"virgil-' + app.app_id + '","sub":"identity-bøb","iat":1,"exp":2}'
    signing_input = f"{part(header)}.{b64url(body.encode('latin-1'))}"
    token = signing_input + "." + b64url(sign(signing_input.encode(), app.app_key))
    assert _verify_parse(app, token) == "bøb"


def _verify_parse(app: VirgilAppCredentials, token: str) -> str:
    return verify_virgil_jwt(
        token, app_public_key=app.app_public_key, app_key_id=app.app_key_id, now=1
    ).identity


def _verify(app: VirgilAppCredentials, token: str, **kw: Any) -> None:
    kw.setdefault("now", 1_700_000_010)
    verify_virgil_jwt(token, app_public_key=app.app_public_key, app_key_id=app.app_key_id, **kw)


def test_expiry_and_not_yet_valid(app: VirgilAppCredentials) -> None:
    token = generate_virgil_jwt(app, "alice", ttl=60, now=1_700_000_000)
    _verify(app, token, now=1_700_000_059)
    _verify(app, token, now=1_700_000_062)  # within the 5 s leeway
    with pytest.raises(TokenExpiredError):
        _verify(app, token, now=1_700_000_066)
    with pytest.raises(TokenExpiredError, match="not yet valid"):
        _verify(app, token, now=1_699_999_000)


def test_every_single_byte_tamper_refused(app: VirgilAppCredentials) -> None:
    token = generate_virgil_jwt(app, "alice", now=1_700_000_000)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        replacement = alphabet[(alphabet.index(ch) + 1) % 64]
        tampered = token[:i] + replacement + token[i + 1 :]
        with pytest.raises(TokenError):
            _verify(app, tampered)


def test_forged_claims_refused(app: VirgilAppCredentials) -> None:
    token = generate_virgil_jwt(app, "alice", now=1_700_000_000)
    h, _b, s = token.split(".")
    body = parse_virgil_jwt(token).body
    forged = dict(body, sub="identity-mallory")
    with pytest.raises(TokenError, match="signature"):
        _verify(app, f"{h}.{part(forged)}.{s}")


def test_wrong_key_kid_app_refused(app: VirgilAppCredentials) -> None:
    token = generate_virgil_jwt(app, "alice", now=1_700_000_000)
    other = generate_key_pair()
    with pytest.raises(TokenError, match="signature"):
        verify_virgil_jwt(
            token, app_public_key=other.public_key, app_key_id=app.app_key_id, now=1_700_000_001
        )
    with pytest.raises(TokenError, match="kid"):
        verify_virgil_jwt(
            token, app_public_key=app.app_public_key, app_key_id="00" * 8, now=1_700_000_001
        )
    with pytest.raises(TokenError, match="iss"):
        _verify(app, token, app_id="another-app")
    # A token signed by another key, claiming our kid, is refused by the signature check.
    rogue = VirgilAppCredentials(app.app_id, other.private_key, app.app_key_id)
    with pytest.raises(TokenError, match="signature"):
        _verify(app, generate_virgil_jwt(rogue, "alice", now=1_700_000_000))


@pytest.mark.parametrize(
    ("field", "value"),
    [("alg", "HS256"), ("alg", "none"), ("typ", "JWS"), ("cty", "virgil-jwt;v=2")],
)
def test_wrong_header_refused_even_if_signed(
    app: VirgilAppCredentials, field: str, value: str
) -> None:
    header = {"alg": "VEDS512", "kid": app.app_key_id, "typ": "JWT", "cty": "virgil-jwt;v=1"}
    header[field] = value
    body = {
        "iss": f"virgil-{app.app_id}",
        "sub": "identity-a",
        "iat": 1_700_000_000,
        "exp": 1_700_000_600,
    }
    token = encode_virgil_jwt(header, body, app.app_key)
    with pytest.raises(TokenError, match=f"\\({field}\\)"):
        _verify(app, token)


def test_exp_before_iat_refused(app: VirgilAppCredentials) -> None:
    header = {"alg": "VEDS512", "kid": app.app_key_id, "typ": "JWT", "cty": "virgil-jwt;v=1"}
    body = {
        "iss": f"virgil-{app.app_id}",
        "sub": "identity-a",
        "iat": 1_700_000_000,
        "exp": 1_700_000_000,
    }
    with pytest.raises(TokenError):
        _verify(app, encode_virgil_jwt(header, body, app.app_key), now=1_699_999_999)


GOOD_HEADER = {"alg": "VEDS512", "kid": "k", "typ": "JWT", "cty": "virgil-jwt;v=1"}
GOOD_BODY = {"iss": "virgil-app", "sub": "identity-a", "iat": 1, "exp": 2}
SIG = b64url(b"\x00" * 83)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        f"{part(GOOD_HEADER)}.{part(GOOD_BODY)}",
        f"{part(GOOD_HEADER)}.{part(GOOD_BODY)}.{SIG}=",
        f"{part(GOOD_HEADER)}.{part(GOOD_BODY)}.{SIG[:-1]}+",
        f"{part(GOOD_HEADER)}.{part(GOOD_BODY)}.A",
        f"{b64url(b'not json')}.{part(GOOD_BODY)}.{SIG}",
        f"{b64url(b'[1]')}.{part(GOOD_BODY)}.{SIG}",
        f"{b64url(bytes([0xFF]))}.{part(GOOD_BODY)}.{SIG}",
        f"{part({**GOOD_HEADER, 'kid': 5})}.{part(GOOD_BODY)}.{SIG}",
        f"{part({k: v for k, v in GOOD_HEADER.items() if k != 'cty'})}.{part(GOOD_BODY)}.{SIG}",
        f"{part(GOOD_HEADER)}.{part({**GOOD_BODY, 'iss': 'app'})}.{SIG}",
        f"{part(GOOD_HEADER)}.{part({**GOOD_BODY, 'iss': 'virgil-'})}.{SIG}",
        f"{part(GOOD_HEADER)}.{part({**GOOD_BODY, 'sub': 'a'})}.{SIG}",
        f"{part(GOOD_HEADER)}.{part({**GOOD_BODY, 'iat': '1'})}.{SIG}",
        f"{part(GOOD_HEADER)}.{part({**GOOD_BODY, 'exp': True})}.{SIG}",
        f"{part(GOOD_HEADER)}.{part({**GOOD_BODY, 'exp': 2.5})}.{SIG}",
        f"{part(GOOD_HEADER)}.{part({**GOOD_BODY, 'ada': 'x'})}.{SIG}",
        "x" * 70_000,
    ],
)
def test_malformed_tokens_raise_typed_error(token: str) -> None:
    with pytest.raises(MalformedTokenError):
        parse_virgil_jwt(token)


def test_non_string_token_raises_typed_error(app: VirgilAppCredentials) -> None:
    for bad in (None, 5, ["a"]):
        with pytest.raises(MalformedTokenError):
            parse_virgil_jwt(bad)  # type: ignore[arg-type]


def test_malformed_signature_length_is_token_error(app: VirgilAppCredentials) -> None:
    token = generate_virgil_jwt(app, "alice", now=1_700_000_000)
    h, b, _ = token.split(".")
    with pytest.raises(TokenError, match="signature"):
        _verify(app, f"{h}.{b}.{b64url(b'short')}")


def test_generate_rejects_bad_arguments(app: VirgilAppCredentials) -> None:
    for identity in ("", None, 5):
        with pytest.raises(TokenError):
            generate_virgil_jwt(app, identity)  # type: ignore[arg-type]
    for ttl in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(TokenError):
            generate_virgil_jwt(app, "a", ttl=ttl)
    with pytest.raises(TokenError):
        generate_virgil_jwt(app, "a", additional_data=["x"])  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        generate_virgil_jwt(app, "a", additional_data={"x": object()})
    with pytest.raises(TokenError):
        generate_virgil_jwt("not creds", "a")  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        verify_virgil_jwt("a.b.c", app_public_key="key", app_key_id="k")  # type: ignore[arg-type]


def test_is_expired(app: VirgilAppCredentials) -> None:
    jwt = parse_virgil_jwt(generate_virgil_jwt(app, "alice", ttl=10, now=1000))
    assert not jwt.is_expired(1009)
    assert jwt.is_expired(1010)
    assert str(jwt) == jwt.raw


@pytest.mark.parametrize("now", ["soon", float("nan"), float("inf"), [], True])
def test_bad_clock_values_are_token_errors(app: VirgilAppCredentials, now: Any) -> None:
    with pytest.raises(TokenError):
        generate_virgil_jwt(app, "alice", now=now)
    token = generate_virgil_jwt(app, "alice")
    with pytest.raises(TokenError):
        verify_virgil_jwt(
            token, app_public_key=app.app_public_key, app_key_id=app.app_key_id, now=now
        )


def test_lone_surrogate_identities_are_token_errors(app: VirgilAppCredentials) -> None:
    with pytest.raises(TokenError):
        generate_virgil_jwt(app, "\ud800")
    header = {"alg": "VEDS512", "kid": app.app_key_id, "typ": "JWT", "cty": "virgil-jwt;v=1"}
    body = '{"iss":"virgil-' + app.app_id + '","sub":"identity-\\ud800","iat":1,"exp":2}'
    signing_input = f"{part(header)}.{b64url(body.encode())}"
    token = signing_input + "." + b64url(sign(signing_input.encode(), app.app_key))
    with pytest.raises(MalformedTokenError):
        parse_virgil_jwt(token)
