"""Twilio access tokens: made by the official helper, verified with PyJWT; bad tokens refused."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import jwt as pyjwt
import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import ChatGrant, VideoGrant

from twilio_e2ee.credentials import TwilioCredentials, generate_development_credentials
from twilio_e2ee.errors import ConfigurationError, TokenError, TokenExpiredError
from twilio_e2ee.tokens.twilio_token import (
    MAX_TTL,
    TwilioTokenError,
    create_twilio_access_token,
    verify_twilio_access_token,
    verify_twilio_access_token_with,
)

NOW = 1_700_000_000


@pytest.fixture
def creds() -> TwilioCredentials:
    return generate_development_credentials().twilio


def keys(creds: TwilioCredentials) -> dict[str, str]:
    return {creds.api_key_sid: creds.api_secret}


def check(creds: TwilioCredentials, token: str, **kw: Any) -> Any:
    kw.setdefault("now", NOW + 10)
    kw.setdefault("service_sid", creds.service_sid)
    return verify_twilio_access_token(
        token, signing_keys=keys(creds), account_sid=creds.account_sid, **kw
    )


def sign(payload: dict[str, Any], secret: str, **headers: Any) -> str:
    hdr = {"cty": "twilio-fpa;v=1", **headers}
    return pyjwt.encode(payload, secret, algorithm="HS256", headers=hdr)


def good_payload(creds: TwilioCredentials, **over: Any) -> dict[str, Any]:
    payload = {
        "jti": f"{creds.api_key_sid}-{NOW}",
        "grants": {"identity": "alice", "chat": {"service_sid": creds.service_sid}},
        "iss": creds.api_key_sid,
        "sub": creds.account_sid,
        "nbf": NOW,
        "exp": NOW + 3600,
    }
    payload.update(over)
    return payload


def test_created_token_has_twilio_shape(creds: TwilioCredentials) -> None:
    token = create_twilio_access_token(creds, "alice", now=NOW)
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"}
    payload = pyjwt.decode(token, options={"verify_signature": False})
    assert payload["iss"] == creds.api_key_sid and payload["sub"] == creds.account_sid
    assert payload["grants"] == {"identity": "alice", "chat": {"service_sid": creds.service_sid}}
    assert (payload["nbf"], payload["exp"]) == (NOW, NOW + 3600)
    assert payload["jti"].startswith(creds.api_key_sid + "-")


def test_round_trip(creds: TwilioCredentials) -> None:
    token = create_twilio_access_token(creds, "ålice", ttl=600, now=NOW)
    result = check(creds, token)
    assert result.identity == "ålice"
    assert result.service_sid == creds.service_sid
    assert result.api_key_sid == creds.api_key_sid
    assert (result.not_before, result.expires_at) == (NOW, NOW + 600)
    assert result.grants["chat"] == {"service_sid": creds.service_sid}
    live = verify_twilio_access_token_with(create_twilio_access_token(creds, "bob"), creds)
    assert live.identity == "bob" and live.expires_at - time.time() > 3500


def test_official_helper_tokens_accepted_incl_legacy_grant_and_no_nbf(
    creds: TwilioCredentials,
) -> None:
    token = AccessToken(
        creds.account_sid,
        creds.api_key_sid,
        creds.api_secret,
        identity="carol",
        grants=[ChatGrant(service_sid=creds.service_sid), VideoGrant(room="r")],
    ).to_jwt()
    assert verify_twilio_access_token_with(token, creds).identity == "carol"
    legacy = sign(
        good_payload(
            creds, grants={"identity": "d", "ip_messaging": {"service_sid": creds.service_sid}}
        ),
        creds.api_secret,
    )
    assert check(creds, legacy).identity == "d"
    payload = good_payload(creds)
    del payload["nbf"]
    assert check(creds, sign(payload, creds.api_secret)).not_before is None


def test_ttl_limits(creds: TwilioCredentials) -> None:
    token = create_twilio_access_token(creds, "a", ttl=MAX_TTL, now=NOW)
    assert check(creds, token).expires_at == NOW + MAX_TTL
    for ttl in (0, -5, MAX_TTL + 1, 1.5, True):
        with pytest.raises(TokenError) as info:
            create_twilio_access_token(creds, "a", ttl=ttl)  # type: ignore[arg-type]
        assert info.value.twilio_code == 20157  # type: ignore[attr-defined]
    too_long = sign(good_payload(creds, exp=NOW + MAX_TTL + 1), creds.api_secret)
    with pytest.raises(TwilioTokenError) as err:
        check(creds, too_long)
    assert err.value.twilio_code == 20157
    no_nbf_far = good_payload(creds, exp=NOW + 3 * MAX_TTL)
    del no_nbf_far["nbf"]
    with pytest.raises(TwilioTokenError, match="24 hours"):
        check(creds, sign(no_nbf_far, creds.api_secret))


def test_expired_and_not_yet_valid(creds: TwilioCredentials) -> None:
    token = create_twilio_access_token(creds, "a", ttl=60, now=NOW)
    check(creds, token, now=NOW + 59)
    with pytest.raises(TokenExpiredError) as err:
        check(creds, token, now=NOW + 70)
    assert err.value.twilio_code == 20104  # type: ignore[attr-defined]
    with pytest.raises(TokenExpiredError) as err:
        check(creds, token, now=NOW - 100)
    assert err.value.twilio_code == 20105  # type: ignore[attr-defined]


def test_tampered_and_forged_refused(creds: TwilioCredentials) -> None:
    token = create_twilio_access_token(creds, "alice", now=NOW)
    h, _p, s = token.split(".")
    forged = pyjwt.encode(
        good_payload(
            creds, grants={"identity": "mallory", "chat": {"service_sid": creds.service_sid}}
        ),
        "x" * 32,
        headers={"cty": "twilio-fpa;v=1"},
    ).split(".")[1]
    with pytest.raises(TwilioTokenError) as err:
        check(creds, f"{h}.{forged}.{s}")
    assert err.value.twilio_code == 20107
    flipped = s[:-3] + ("A" if s[-3] != "A" else "B") + s[-2:]
    with pytest.raises(TokenError):
        check(creds, f"{h}.{_p}.{flipped}")
    other_secret = sign(good_payload(creds), "y" * 40)
    with pytest.raises(TwilioTokenError, match="signature"):
        check(creds, other_secret)


def test_wrong_issuer_account_service_refused(creds: TwilioCredentials) -> None:
    other = generate_development_credentials().twilio
    with pytest.raises(TwilioTokenError, match="unknown API key") as err:
        check(creds, create_twilio_access_token(other, "a", now=NOW))
    assert err.value.twilio_code == 20103
    # Same key SID and secret, but minted for another account: wrong audience.
    foreign_account = replace(creds, account_sid=other.account_sid)
    with pytest.raises(TwilioTokenError, match="another account"):
        check(creds, create_twilio_access_token(foreign_account, "a", now=NOW))
    with pytest.raises(TwilioTokenError, match="another service") as err:
        check(creds, create_twilio_access_token(creds, "a", service_sid=other.service_sid, now=NOW))
    assert err.value.twilio_code == 20106
    # Without a service constraint, any service of the account is accepted.
    token = create_twilio_access_token(creds, "a", service_sid=other.service_sid, now=NOW)
    assert check(creds, token, service_sid=None).service_sid == other.service_sid


@pytest.mark.parametrize(
    "headers",
    [{"cty": "twilio-fpa;v=2"}, {"cty": None}, {"typ": "JWS"}],
)
def test_wrong_header_refused(creds: TwilioCredentials, headers: dict[str, Any]) -> None:
    token = sign(good_payload(creds), creds.api_secret, **headers)
    with pytest.raises(TwilioTokenError) as err:
        check(creds, token)
    assert err.value.twilio_code == 20102


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_other_algorithms_refused(creds: TwilioCredentials) -> None:
    payload = good_payload(creds)
    hs512 = pyjwt.encode(
        payload, creds.api_secret, algorithm="HS512", headers={"cty": "twilio-fpa;v=1"}
    )
    none = pyjwt.encode(payload, None, algorithm="none", headers={"cty": "twilio-fpa;v=1"})
    for token in (hs512, none):
        with pytest.raises(TwilioTokenError, match="HS256"):
            check(creds, token)


@pytest.mark.parametrize(
    "over",
    [
        {"grants": None},
        {"grants": {"chat": {"service_sid": "IS1"}}},
        {"grants": {"identity": "", "chat": {"service_sid": "IS1"}}},
        {"grants": {"identity": "x" * 257, "chat": {"service_sid": "IS1"}}},
        {"grants": {"identity": "a"}},
        {"grants": {"identity": "a", "chat": {}}},
        {"grants": {"identity": "a", "video": {"room": "r"}}},
        {"exp": "later"},
        {"nbf": NOW + 4000},
        {"sub": 5},
    ],
)
def test_bad_claims_refused(creds: TwilioCredentials, over: dict[str, Any]) -> None:
    with pytest.raises(TwilioTokenError):
        check(creds, sign(good_payload(creds, **over), creds.api_secret), service_sid=None)


def test_missing_claims_refused(creds: TwilioCredentials) -> None:
    for name in ("exp", "sub", "iss"):
        payload = good_payload(creds)
        del payload[name]
        with pytest.raises(TwilioTokenError):
            check(creds, sign(payload, creds.api_secret))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 20_000, None, 5])
def test_malformed_refused(creds: TwilioCredentials, token: Any) -> None:
    with pytest.raises(TokenError):
        check(creds, token)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_short_secrets_rejected(creds: TwilioCredentials) -> None:
    short = replace(creds, api_secret="s" * 31)
    with pytest.raises(ConfigurationError, match="32 bytes"):
        create_twilio_access_token(short, "a")
    token = sign(good_payload(creds), "s" * 31)
    with pytest.raises(ConfigurationError):
        verify_twilio_access_token(
            token, signing_keys={creds.api_key_sid: "s" * 31}, account_sid=creds.account_sid
        )


def test_create_rejects_bad_input(creds: TwilioCredentials) -> None:
    for identity in ("", None, "x" * 257):
        with pytest.raises(TokenError):
            create_twilio_access_token(creds, identity)  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        create_twilio_access_token("creds", "a")  # type: ignore[arg-type]


@pytest.mark.parametrize("now", ["soon", float("nan"), float("inf"), [], True])
def test_bad_clock_values_are_token_errors(creds: TwilioCredentials, now: Any) -> None:
    with pytest.raises(TokenError):
        create_twilio_access_token(creds, "alice", now=now)
    token = create_twilio_access_token(creds, "alice")
    with pytest.raises(TokenError):
        verify_twilio_access_token_with(token, creds, now=now)


def test_non_ascii_token_and_bad_arguments_are_typed(creds: TwilioCredentials) -> None:
    with pytest.raises(TwilioTokenError) as err:
        verify_twilio_access_token_with("\ud800.\u00e9.x", creds)
    assert err.value.twilio_code == 20101
    token = create_twilio_access_token(creds, "alice")
    with pytest.raises(ConfigurationError):
        verify_twilio_access_token(token, signing_keys=None, account_sid=creds.account_sid)  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        create_twilio_access_token(creds, "alice", service_sid=b"IS00")  # type: ignore[arg-type]
