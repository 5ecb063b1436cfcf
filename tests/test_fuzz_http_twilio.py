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
    GARBAGE_BYTES,
    FuzzRequest,
    fuzz_settings,
    json_body,
    json_values,
    segment,
    weighted,
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


def reseed(h: Harness) -> None:
    """Recreate whatever seeded resource a fuzzed request deleted (or renamed), so that later
    requests still reach the handlers of existing resources rather than only 404s."""
    s, mock, client = h.seeded, h.mock, h.client

    def post(path: str, **data: str) -> str:
        r = client.post(path, data=data, auth=h.auth)
        assert r.status_code == 201, r.text
        return str(r.json()["sid"])

    if client.get(f"/v1/Services/{s.service}", auth=h.auth).status_code == 404:  # deleted
        s.service = post("/v1/Services", FriendlyName="fuzz")
        r = client.post("/v1/Configuration", data={"DefaultChatServiceSid": s.service}, auth=h.auth)
        assert r.status_code == 200, r.text
    conversations = {c["sid"]: c for c in mock.conversations()}
    if (
        s.conversation not in conversations
        or conversations[s.conversation].get("unique_name") != s.unique_name
    ):
        s.unique_name = f"fuzz-room-{len(conversations)}-{s.conversation[-6:]}"
        s.conversation = post("/v1/Conversations", UniqueName=s.unique_name)
    base = f"/v1/Conversations/{s.conversation}"
    if s.participant not in {p["sid"] for p in mock.participants(s.conversation)}:
        found = [p for p in mock.participants(s.conversation) if p.get("identity") == "alice"]
        s.participant = found[0]["sid"] if found else post(f"{base}/Participants", Identity="alice")
    if s.message not in {m["sid"] for m in mock.messages(s.conversation)}:
        s.message = post(f"{base}/Messages", Author="alice", Body="hello")
    if client.get(f"/v1/Users/{s.user}", auth=h.auth).status_code == 404:
        r = client.get("/v1/Users/bob", auth=h.auth)
        s.user = r.json()["sid"] if r.status_code == 200 else post("/v1/Users", Identity="bob")


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


def known_sids(seeded: Seeded, draw: st.DrawFn) -> dict[str, str]:
    """Path parameters naming existing resources (by SID, or by unique name / identity)."""
    return {
        "svc": seeded.service,
        "conv": draw(st.sampled_from([seeded.conversation, seeded.unique_name])),
        "part": draw(st.sampled_from([seeded.participant, seeded.identity])),
        "msg": draw(st.sampled_from([seeded.message, "0"])),
        "user": draw(st.sampled_from([seeded.user, "bob"])),
        "hook": "WH" + "0" * 32,
    }


def sids(seeded: Seeded) -> st.SearchStrategy[dict[str, str]]:
    """Path parameters: the seeded SIDs/names, look-alike unknown SIDs, or garbage."""

    def ref(known: list[str], prefix: str) -> st.SearchStrategy[str]:
        lookalike = st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda h: prefix + h)
        if not known:
            return lookalike | segment
        return weighted((4, st.sampled_from(known)), (1, lookalike), (1, segment))

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
# The fields each resource takes, so that most generated forms reach its handler's checks.
RESOURCE_FIELDS = {
    "Messages": ["Body", "Author", "Attributes", "DateCreated", "MediaSid", "ContentSid"],
    "Participants": [
        "Identity", "Attributes", "RoleSid", "MessagingBinding.Address",
        "MessagingBinding.ProxyAddress", "LastReadMessageIndex", "LastReadTimestamp",
    ],
    "Webhooks": [
        "Target", "Configuration.Url", "Configuration.Method", "Configuration.Filters",
        "Configuration.Triggers", "Configuration.FlowSid", "Configuration.ReplayAfter",
    ],
    "Users": ["Identity", "FriendlyName", "Attributes", "RoleSid"],
    "Conversations": [
        "FriendlyName", "UniqueName", "Attributes", "State", "Timers.Inactive", "Timers.Closed",
        "MessagingServiceSid", "DateCreated",
    ],
    "Configuration": [
        "DefaultChatServiceSid", "DefaultInactiveTimer", "DefaultClosedTimer", "Filters",
        "Method", "PreWebhookUrl", "PostWebhookUrl", "ReachabilityEnabled",
    ],
    "Services": ["FriendlyName"],
}  # fmt: skip


def form_strategy(path: str, min_size: int = 0) -> st.SearchStrategy[list[tuple[str, str]]]:
    # The innermost resource named in the path (…/Conversations/CH…/Messages → Messages).
    found = [(path.rfind(f"/{name}"), name) for name in RESOURCE_FIELDS if f"/{name}" in path]
    relevant = RESOURCE_FIELDS[max(found)[1]] if found else FIELDS
    name = weighted(
        (4, st.sampled_from(relevant)), (1, st.sampled_from(FIELDS)), (1, st.text(max_size=12))
    )
    return st.lists(st.tuples(name, field_values), min_size=min_size, max_size=6)


query_strategy = st.lists(
    st.tuples(st.sampled_from(QUERY_FIELDS), st.text(max_size=12) | st.integers().map(str)),
    max_size=3,
)


@st.composite
def requests(draw: st.DrawFn, seeded: Seeded, auth: tuple[str, str], focused: bool) -> FuzzRequest:
    """A random request; ``focused``: authenticated forms to existing resources' routes, so that
    the handlers' own field checks run (the unfocused mix is mostly refused before them)."""
    if focused:
        method = draw(st.sampled_from(["POST"] * 4 + ["GET", "DELETE"]))
        template = draw(st.sampled_from([p for p in PATHS if "Nowhere" not in p and "v2" not in p]))
        path = template.format(**known_sids(seeded, draw))
    else:
        methods = ["POST"] * 5 + ["GET"] * 3 + ["DELETE", "PUT", "PATCH", "TRACE"]
        method = draw(st.sampled_from(methods))
        path = draw(st.sampled_from(PATHS)).format(**draw(sids(seeded)))
    query = urlencode(draw(query_strategy))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    good = _basic(*auth)
    headers["Authorization"] = (
        good
        if focused
        else draw(
            st.sampled_from(
                [good] * 12
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
    )
    if draw(st.booleans()):
        headers["X-Twilio-Webhook-Enabled"] = "true"
    form: list[tuple[str, str]] = []
    kinds = ["form"] * 12 + ["garbage"] * 2 + ["json"] * 2 + ["huge", "empty"]
    kind = "form" if focused else draw(st.sampled_from(kinds))
    if kind == "form":
        form = draw(form_strategy(path, min_size=1 if focused else 0))
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
def _with_harness(draw: st.DrawFn, h: Harness, focused: bool) -> FuzzRequest:
    return draw(requests(h.seeded, h.auth, focused))


@pytest.mark.parametrize("focused", [False, True], ids=["anything", "handler-fields"])
def test_bad_input_never_500s_and_refusals_change_nothing(harness: Harness, focused: bool) -> None:
    assert harness.mock.faults  # injector exists but no fault is configured: no 5xx expected
    seen: dict[str, int] = {}

    @fuzz_settings(250)
    @given(req=_with_harness(harness, focused))
    def prop(req: FuzzRequest) -> None:
        before = snapshot(harness.mock)
        status, text = _send(harness, req)
        bucket = f"{status // 100}xx"
        seen[bucket] = seen.get(bucket, 0) + 1
        check_response(req, status, text)
        if status >= 400:
            assert snapshot(harness.mock) == before, f"refused {req.method} {req.path} wrote"
        else:
            reseed(harness)

    prop()
    print(f"mock Twilio fuzz outcomes: {seen}")
    # The generator must reach both outcomes, or the properties above would be vacuous.
    assert seen.get("4xx", 0) > 0 and seen.get("2xx", 0) > 0, seen
