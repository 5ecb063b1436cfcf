"""Reading ``Retry-After`` through the `twilio` SDK.

`TwilioRestException` carries the status and Twilio's code but not the response headers, so the
adapter wraps the client's HTTP client (whichever it is: the plain one for real Twilio, or the
package's URL-rewriting one for the mock) in a pass-through that remembers the last
``Retry-After`` seen in the current thread or task (a context variable).
"""

from __future__ import annotations

import contextvars
from typing import Any

from twilio.http import AsyncHttpClient, HttpClient
from twilio.rest import Client

from twilio_e2ee.chat.retry import parse_retry_after

__all__ = ["install_retry_after_probe", "last_retry_after", "reset_retry_after"]

_LAST: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_e2ee_retry_after", default=None
)


def _record(response: Any) -> None:
    headers = getattr(response, "headers", None)
    status = getattr(response, "status_code", 0)
    value = None
    if headers is not None and status in (429, 503):
        try:
            value = headers.get("Retry-After")
        except AttributeError:
            value = None
    _LAST.set(parse_retry_after(value) if value is not None else None)


def last_retry_after() -> float | None:
    """Seconds asked by the last 429/503 answer in this thread/task, else None."""
    return _LAST.get()


def reset_retry_after() -> None:
    _LAST.set(None)


class _SyncProbe(HttpClient):  # type: ignore[misc]
    def __init__(self, inner: HttpClient) -> None:
        super().__init__(logger=inner.logger, is_async=False, timeout=inner.timeout)
        self.inner = inner

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _LAST.set(None)
        response = self.inner.request(*args, **kwargs)
        _record(response)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _AsyncProbe(AsyncHttpClient):  # type: ignore[misc]
    def __init__(self, inner: AsyncHttpClient) -> None:
        super().__init__(logger=inner.logger, is_async=True, timeout=inner.timeout)
        self.inner = inner

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        _LAST.set(None)
        response = await self.inner.request(*args, **kwargs)
        _record(response)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def install_retry_after_probe(client: Client) -> None:
    """Wrap `client.http_client` once so :func:`last_retry_after` works (idempotent)."""
    current = client.http_client
    if isinstance(current, (_SyncProbe, _AsyncProbe)):
        return
    if getattr(current, "is_async", False):
        client.http_client = _AsyncProbe(current)
    else:
        client.http_client = _SyncProbe(current)
