"""Validate every response the tests provoke from the mock Twilio service against Twilio's spec.

``tests/data/twilio_conversations_v1.json`` (twilio-oai) describes success responses only; error
bodies are checked against Twilio's legacy error shape below. The mock's loopback URL is added to
the spec's ``servers`` (top level and per path) with a templated port, so one validator serves
every test server.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jsonschema
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from twilio.http.response import Response

from twilio_e2ee.twilio_http import (
    AsyncRedirectingHttpClient,
    RedirectingHttpClient,
    rewrite_twilio_url,
)

SPEC_PATH = Path(__file__).parent / "data" / "twilio_conversations_v1.json"
LOOPBACK_SERVER = {"url": "http://127.0.0.1:{port}", "variables": {"port": {"default": "80"}}}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer", "minimum": 10000, "maximum": 99999},
        "message": {"type": "string", "minLength": 1},
        "more_info": {"type": "string", "pattern": r"^https://www\.twilio\.com/docs/errors/\d+$"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
    },
    "not": {"required": ["type", "title"]},  # would turn into TwilioServiceException (9.10+)
}


@lru_cache(maxsize=1)
def openapi() -> OpenAPI:
    spec = json.loads(SPEC_PATH.read_text())
    spec = copy.deepcopy(spec)
    spec.setdefault("servers", []).append(LOOPBACK_SERVER)
    for item in spec["paths"].values():
        item.setdefault("servers", []).append(LOOPBACK_SERVER)
    return OpenAPI.from_dict(spec)


@dataclass
class Exchange:
    """One request the SDK made and the response it got."""

    method: str
    url: str
    params: dict[str, Any] | None
    data: dict[str, Any] | None
    status: int
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


def validate_exchange(ex: Exchange) -> None:
    """Raise if the response does not match Twilio's spec (or error shape for 4xx/5xx)."""
    if ex.status >= 400:
        if ex.status >= 500 and not ex.text.lstrip().startswith("{"):
            return  # an injected gateway failure ("answer lost"), not a Twilio body
        jsonschema.validate(ex.json, ERROR_SCHEMA)
        assert ex.json["status"] == ex.status
        return
    parts = urlsplit(ex.url)
    query: dict[str, Any] = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    for key, value in (ex.params or {}).items():
        query[key] = str(value)
    host_url = f"{parts.scheme}://{parts.netloc}"
    body = urlencode(ex.data or {}, doseq=True).encode() if ex.method != "GET" else None
    request = MockRequest(
        host_url,
        ex.method.lower(),
        parts.path,
        args=query,
        data=body,
        content_type="application/x-www-form-urlencoded",
    )
    content_type = "application/json" if ex.text else ""
    response = MockResponse(ex.text.encode(), status_code=ex.status, content_type=content_type)
    openapi().validate_response(request, response)


class _Recorder:
    exchanges: list[Exchange]

    def _check(self, method: str, url: str, params: Any, data: Any, response: Response) -> None:
        ex = Exchange(method, url, params, data, response.status_code, response.text)
        self.exchanges.append(ex)
        validate_exchange(ex)


class ValidatingHttpClient(RedirectingHttpClient, _Recorder):
    """The package's redirecting client that validates every response against the spec."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.exchanges = []

    def request(
        self, method: str, url: str, params: Any = None, data: Any = None, **kw: Any
    ) -> Response:  # type: ignore[override]
        response = super().request(method, url, params=params, data=data, **kw)
        self._check(method, rewrite(url, self.base_url), params, data, response)
        return response


class AsyncValidatingHttpClient(AsyncRedirectingHttpClient, _Recorder):
    """Async twin of :class:`ValidatingHttpClient`."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.exchanges = []

    async def request(
        self, method: str, url: str, params: Any = None, data: Any = None, **kw: Any
    ) -> Response:  # type: ignore[override]
        response = await super().request(method, url, params=params, data=data, **kw)
        self._check(method, rewrite(url, self.base_url), params, data, response)
        return response


def rewrite(url: str, base_url: str | None) -> str:
    return rewrite_twilio_url(url, base_url)


def http_call(
    base_url: str,
    method: str,
    path: str,
    *,
    auth: tuple[str, str] | None,
    data: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> Any:
    """A raw httpx call to the mock whose response is validated like the SDK's."""
    import httpx

    url = base_url + path
    with httpx.Client(trust_env=False, timeout=10) as client:
        response = client.request(
            method, url, data=data, auth=auth, headers=headers, content=content
        )
    validate_exchange(Exchange(method, url, None, data, response.status_code, response.text))
    return response


def validate_last(http_client: Any) -> Exchange:
    """Validate the last exchange of any twilio ``HttpClient`` (its ``_test_only_last_*``)."""
    request = http_client._test_only_last_request
    response = http_client._test_only_last_response
    ex = Exchange(
        request.method,
        request.url,
        request.params or None,
        request.data or None,
        response.status_code,
        response.text,
    )
    validate_exchange(ex)
    return ex
