"""Property-based HTTP fuzzing of the mock Twilio Conversations service.

Random requests against every route family the mock implements (Conversations, Participants,
Messages, conversation Webhooks, Users, Services, Configuration), with malformed form fields,
unknown or garbage SIDs, wrong credentials, oversized and non-UTF-8 bodies. Properties:

* never a 5xx (fault injection stays off);
* every 4xx body is Twilio's legacy error ``{"code", "message", "more_info", "status"}`` (plus
  Twilio's optional ``detail``), with integer code and ``status`` equal to the HTTP status;
* every 2xx validates against Twilio's own OpenAPI spec (``tests.twilio_spec``);
* a refused request changes no stored state (the whole store, compared row by row).

Hypothesis drives the ASGI app directly (no sockets); schemathesis was not used: the route
families and failure modes below are the ones this mock implements, and the budget is seconds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mock_services.twilio import MockTwilioService
from mock_services.twilio.app import MAX_REQUEST_BYTES
from tests.fuzz_http import (
    FUZZ_SETTINGS,
    GARBAGE_BYTES,
    FuzzRequest,
    json_body,
    json_values,
    segment,
)
from tests.twilio_spec import Exchange, validate_exchange
from twilio_e2ee.credentials import generate_development_credentials

TWILIO_ERROR_KEYS = {"code", "message", "more_info", "status"}
FIELDS = [
    "FriendlyName", "UniqueName", "Attributes", "Body", "Author", "Identity", "State",
    "DateCreated", "DateUpdated", "MessagingServiceSid", "Timers.Inactive", "Timers.Closed",
    "RoleSid", "MessagingBinding.Address", "MessagingBinding.ProxyAddress",
    "MessagingBinding.ProjectedAddress", "LastReadMessageIndex", "LastReadTimestamp",
    "Target", "Configuration.Url", "Configuration.Method", "Configuration.Filters",
    "Configuration.Triggers", "Configuration.FlowSid", "Configuration.ReplayAfter", "MediaSid",
    "ContentSid", "Filters", "Method", "PreWebhookUrl", "PostWebhookUrl", "DefaultChatServiceSid",
    "DefaultInactiveTimer", "DefaultClosedTimer", "DefaultMessagingServiceSid",
    "ReachabilityEnabled", "ConversationSid", "Index",
]  # fmt: skip
QUERY_FIELDS = ["PageSize", "Page", "PageToken", "Order", "State", "StartDate", "EndDate"]


@dataclass
class Seeded:
    """SIDs and names of the resources created before fuzzing."""

    service: str
    conversation: str
    unique_name: str
    participant: str
    identity: str
    message: str
    user: str


@dataclass
class Harness:
    mock: MockTwilioService
    client: TestClient
    seeded: Seeded
    auth: tuple[str, str]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    creds = generate_development_credentials().twilio
    assert creds.auth_token is not None
    mock = MockTwilioService(creds)
    auth = (creds.account_sid, creds.auth_token)
    with TestClient(mock.app, raise_server_exceptions=False) as client:
        conv = client.post("/v1/Conversations", data={"UniqueName": "fuzz-room"}, auth=auth).json()
        part = client.post(
            f"/v1/Conversations/{conv['sid']}/Participants", data={"Identity": "alice"}, auth=auth
        ).json()
        msg = client.post(
            f"/v1/Conversations/{conv['sid']}/Messages",
            data={"Author": "alice", "Body": "hello"},
            auth=auth,
        ).json()
        user = client.post("/v1/Users", data={"Identity": "bob"}, auth=auth).json()
        seeded = Seeded(
            creds.service_sid, conv["sid"], "fuzz-room", part["sid"], "alice", msg["sid"],
            user["sid"],
        )  # fmt: skip
        yield Harness(mock, client, seeded, auth)
    mock.close()


def snapshot(mock: MockTwilioService) -> Any:
    """Every stored row (resources, tombstones, meta) plus the public views of the seed."""
    store = mock.store
    with store.transaction():
        rows = store._db.execute("SELECT * FROM resources ORDER BY sid").fetchall()
        meta = store._db.execute("SELECT * FROM meta ORDER BY key").fetchall()
    conversations = mock.conversations()
    per_conversation = {
        c["sid"]: (mock.participants(c["sid"]), mock.messages(c["sid"])) for c in conversations
    }
    return rows, meta, conversations, per_conversation


# --- the request strategy ----------------------------------------------------------------------


def sids(seeded: Seeded) -> st.SearchStrategy[dict[str, str]]:
    """Path parameters: the seeded SIDs/names, look-alike unknown SIDs, or garbage."""

    def ref(known: list[str], prefix: str) -> st.SearchStrategy[str]:
        lookalike = st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda h: prefix + h)
        return (st.sampled_from(known) if known else lookalike) | lookalike | segment

    return st.fixed_dictionaries(
        {
            "svc": ref([seeded.service], "IS"),
            "conv": ref([seeded.conversation, seeded.unique_name], "CH"),
            "part": ref([seeded.participant, seeded.identity], "MB"),
            "msg": ref([seeded.message, "0", "1", "-1"], "IM"),
            "user": ref([seeded.user, "bob", seeded.identity], "US"),
            "hook": ref([], "WH"),
        }
    )


PATHS = [
    "/v1/Conversations",
    "/v1/Conversations/{conv}",
    "/v1/Conversations/{conv}/Participants",
    "/v1/Conversations/{conv}/Participants/{part}",
    "/v1/Conversations/{conv}/Messages",
    "/v1/Conversations/{conv}/Messages/{msg}",
    "/v1/Conversations/{conv}/Webhooks",
    "/v1/Conversations/{conv}/Webhooks/{hook}",
    "/v1/Users",
    "/v1/Users/{user}",
    "/v1/Services",
    "/v1/Services/{svc}",
    "/v1/Services/{svc}/Conversations/{conv}/Messages",
    "/v1/Services/{svc}/Conversations/{conv}/Participants/{part}",
    "/v1/Services/{svc}/Users/{user}",
    "/v1/Services/{svc}/Configuration",
    "/v1/Services/{svc}/Configuration/Webhooks",
    "/v1/Configuration",
    "/v1/Configuration/Webhooks",
    "/v1/Nowhere/{conv}",
    "/v2/Conversations",
]

field_values = (
    st.text(max_size=30)
    | st.integers(min_value=-(2**40), max_value=2**40).map(str)
    | json_values.map(json.dumps)
    | st.sampled_from(["", "true", "false", "null", "{", "[]", "2020-13-45T99:00:00Z", "POST"])
)
form_strategy = st.lists(
    st.tuples(st.sampled_from(FIELDS) | st.text(max_size=12), field_values), max_size=6
)
query_strategy = st.lists(
    st.tuples(st.sampled_from(QUERY_FIELDS), st.text(max_size=12) | st.integers().map(str)),
    max_size=3,
)


@st.composite
def requests(draw: st.DrawFn, seeded: Seeded, auth: tuple[str, str]) -> FuzzRequest:
    method = draw(
        st.sampled_from(["GET", "POST", "POST", "POST", "DELETE", "PUT", "PATCH", "TRACE"])
    )
    path = draw(st.sampled_from(PATHS)).format(**draw(sids(seeded)))
    query = urlencode(draw(query_strategy))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    good = _basic(*auth)
    headers["Authorization"] = draw(
        st.sampled_from(
            [good] * 6
            + [
                _basic(auth[0], auth[1] + "x"),
                _basic("AC" + "0" * 32, auth[1]),
                "Basic !!!not-base64",
                "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
                "Bearer not.a.token",
                "Digest abc",
                "",
            ]
        )
    )
    if draw(st.booleans()):
        headers["X-Twilio-Webhook-Enabled"] = "true"
    form: list[tuple[str, str]] = []
    kind = draw(st.sampled_from(["form"] * 6 + ["garbage", "json", "huge", "empty"]))
    if kind == "form":
        form = draw(form_strategy)
        content = urlencode(form).encode("utf-8", "surrogatepass")
    elif kind == "garbage":
        content = draw(GARBAGE_BYTES)
    elif kind == "json":
        headers["Content-Type"] = "application/json"
        content = json_body(draw(json_values))
    elif kind == "huge":
        content = b"Body=" + b"x" * MAX_REQUEST_BYTES
    else:
        content = b""
    return FuzzRequest(method, path, headers, content, query=query, form=form)


# --- the property ------------------------------------------------------------------------------


def check_response(req: FuzzRequest, status: int, text: str) -> None:
    assert status < 500, f"{req.method} {req.path} -> {status}: {text[:300]}"
    if status >= 400:
        body = json.loads(text)
        assert isinstance(body, dict), body
        assert TWILIO_ERROR_KEYS <= body.keys() <= TWILIO_ERROR_KEYS | {"detail"}, body
        assert type(body["code"]) is int and type(body["status"]) is int, body
        assert body["status"] == status, body
        assert isinstance(body["message"], str) and body["message"], body
    url = "http://127.0.0.1:80" + req.path + ("?" + req.query if req.query else "")
    # 2xx: Twilio's OpenAPI spec; 4xx: tests.twilio_spec.ERROR_SCHEMA (validated once more).
    validate_exchange(Exchange(req.method, url, None, dict(req.form) or None, status, text))


def _send(h: Harness, req: FuzzRequest) -> tuple[int, str]:
    response = h.client.request(req.method, req.target, headers=req.headers, content=req.content)
    return response.status_code, response.text


@st.composite
def _with_harness(draw: st.DrawFn, h: Harness) -> FuzzRequest:
    return draw(requests(h.seeded, h.auth))


def test_bad_input_never_500s_and_refusals_change_nothing(harness: Harness) -> None:
    assert harness.mock.faults  # injector exists but no fault is configured: no 5xx expected
    seen: dict[str, int] = {}

    @FUZZ_SETTINGS
    @given(req=_with_harness(harness))
    def prop(req: FuzzRequest) -> None:
        before = snapshot(harness.mock)
        status, text = _send(harness, req)
        bucket = f"{status // 100}xx"
        seen[bucket] = seen.get(bucket, 0) + 1
        check_response(req, status, text)
        if status >= 400:
            assert snapshot(harness.mock) == before, f"refused {req.method} {req.path} wrote"

    prop()
    print(f"mock Twilio fuzz outcomes: {seen}")
    # The generator must reach both outcomes, or the properties above would be vacuous.
    assert seen.get("4xx", 0) > 0 and seen.get("2xx", 0) > 0, seen
