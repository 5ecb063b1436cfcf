"""HTTP clients for the official ``twilio`` SDK (9.x) that can send its calls to another base URL.

The SDK builds ``https://conversations.twilio.com/v1/...`` URLs (and follows the ``next_page_url``
values the service returns). These clients rewrite every ``https://twilio.com`` /
``https://*.twilio.com`` URL to ``base_url`` (scheme, host and port; path and query are kept), pass
the original host in ``X-Twilio-Original-Host``, and ignore proxy environment variables, so a
loopback mock is reached. With ``base_url=None`` nothing is rewritten: the same code talks to real
Twilio.

    client = twilio_rest_client(account_sid, auth_token, base_url=stack.twilio_url)
    client.conversations.v1.conversations.create(friendly_name="demo")
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from twilio_e2ee.errors import ConfigurationError

__all__ = [
    "AsyncRedirectingHttpClient",
    "RedirectingHttpClient",
    "rewrite_twilio_url",
    "twilio_rest_client",
]

ORIGINAL_HOST_HEADER = "X-Twilio-Original-Host"


def _check_base_url(base_url: object) -> str:
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be an http(s) URL str, got {base_url!r}")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}")
    return base_url.rstrip("/")


def _is_twilio_host(host: str) -> bool:
    host = host.lower()
    return host == "twilio.com" or host.endswith(".twilio.com")


def rewrite_twilio_url(url: str, base_url: str | None) -> str:
    """``url`` with its scheme and host replaced by ``base_url`` when it is a Twilio URL."""
    if base_url is None:
        return url
    parts = urlsplit(url)
    if parts.scheme != "https" or not _is_twilio_host(parts.hostname or ""):
        return url
    base = urlsplit(base_url)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


def _headers(url: str, headers: dict[str, str] | None, base_url: str | None) -> dict[str, str]:
    out = dict(headers or {})
    if base_url is not None:
        host = urlsplit(url).hostname
        if host and _is_twilio_host(host):
            out[ORIGINAL_HOST_HEADER] = host
    return out


def _basic_auth(auth: tuple[str, str]) -> str:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
    return f"Basic {token}"


class RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """``TwilioHttpClient`` that sends Twilio URLs to ``base_url`` (no rewrite when ``None``)."""

    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = None if base_url is None else _check_base_url(base_url)
        if self.base_url is not None and self.session is not None:
            self.session.trust_env = False  # HTTP(S)_PROXY must not capture loopback calls

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            rewrite_twilio_url(url, self.base_url),
            params=params,
            data=data,
            headers=_headers(url, headers, self.base_url),
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


class AsyncRedirectingHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """``AsyncTwilioHttpClient`` (aiohttp) that sends Twilio URLs to ``base_url``.

    Create it inside a running event loop and close it (``async with`` or ``await close()``).
    """

    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = None if base_url is None else _check_base_url(base_url)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        merged = _headers(url, headers, self.base_url)
        if auth is not None:  # aiohttp 3.14 deprecates BasicAuth/auth=: send the header ourselves
            merged["Authorization"] = _basic_auth(auth)
        return await super().request(
            method,
            rewrite_twilio_url(url, self.base_url),
            params=params,
            data=data,
            headers=merged,
            auth=None,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def twilio_rest_client(
    account_sid: str,
    auth_token_or_secret: str,
    *,
    username: str | None = None,
    base_url: str | None = None,
    async_: bool = False,
) -> Client:
    """A ``twilio.rest.Client`` for an account, optionally redirected to ``base_url``.

    Authenticate with the account's auth token, or with an API key: ``username`` = the API key
    SID and ``auth_token_or_secret`` = its secret. ``async_=True`` gives a client whose
    ``*_async`` methods work (call it inside a running loop; close ``client.http_client``).
    """
    http_client: TwilioHttpClient | AsyncTwilioHttpClient
    if async_:
        http_client = AsyncRedirectingHttpClient(base_url)
    else:
        http_client = RedirectingHttpClient(base_url)
    client = Client(
        username or account_sid,
        auth_token_or_secret,
        account_sid,
        http_client=http_client,
    )
    if base_url is not None:  # TWILIO_REGION/EDGE would only rename hosts we rewrite anyway
        client.region = None
        client.edge = None
    return client
