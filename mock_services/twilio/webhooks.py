"""Post-event webhooks as Twilio sends them: form-encoded, signed with ``X-Twilio-Signature``.

The signature is Twilio's: base64(HMAC-SHA1(auth_token, url + every POST parameter name and value,
names sorted)), which ``twilio.request_validator.RequestValidator`` accepts; for ``GET`` hooks the
parameters travel in the query string and only the URL is signed. The mock delivers only to
loopback addresses and refuses to configure any other target.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from mock_services.journal import Journal, JournalEntry
from mock_services.twilio.errors import bad_request

__all__ = [
    "POST_EVENTS",
    "PRE_EVENTS",
    "WebhookDelivery",
    "WebhookTarget",
    "check_loopback_url",
    "deliver",
    "twilio_signature",
]

PRE_EVENTS = frozenset(
    {
        "onConversationAdd",
        "onConversationUpdate",
        "onConversationRemove",
        "onParticipantAdd",
        "onParticipantUpdate",
        "onParticipantRemove",
        "onMessageAdd",
        "onMessageUpdate",
        "onMessageRemove",
        "onUserUpdate",
    }
)
POST_EVENTS = frozenset(
    {
        "onConversationAdded",
        "onConversationUpdated",
        "onConversationRemoved",
        "onConversationStateUpdated",
        "onParticipantAdded",
        "onParticipantUpdated",
        "onParticipantRemoved",
        "onMessageAdded",
        "onMessageUpdated",
        "onMessageRemoved",
        "onDeliveryUpdated",
        "onUserAdded",
        "onUserUpdated",
    }
)
TIMEOUT_SECONDS = 5.0  # Twilio's webhook timeout


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """``X-Twilio-Signature`` for a request to ``url`` with POST ``params`` (empty for GET)."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def check_loopback_url(url: str) -> str:
    """Accept only ``http(s)://`` URLs on a loopback host (the mock never calls out)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if parts.scheme not in ("http", "https") or not loopback:
        raise bad_request(
            f"Invalid webhook URL {url!r}: the mock Twilio service delivers webhooks only to "
            "loopback addresses (http://127.0.0.1:PORT/...)"
        )
    if len(url) > 512:
        raise bad_request("Webhook URL is too long (at most 512 characters)", code=50372)
    return url


@dataclass(frozen=True)
class WebhookTarget:
    """Where an event goes: URL, method and the webhook SID (for conversation-scoped hooks)."""

    url: str
    method: str = "POST"
    webhook_sid: str | None = None
    webhook_type: str = "webhook"


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery attempt, as recorded by the mock."""

    event: str
    url: str
    method: str
    params: dict[str, str]
    signature: str
    status: int | None
    error: str | None = None


async def deliver(
    target: WebhookTarget,
    event: str,
    params: Mapping[str, Any],
    *,
    auth_token: str,
    journal: Journal | None = None,
) -> WebhookDelivery:
    """Send one signed event; failures are recorded, never raised."""
    form = {k: str(v) for k, v in params.items() if v is not None}
    form["EventType"] = event
    if target.webhook_sid:
        form["WebhookSid"] = target.webhook_sid
    form.setdefault("RetryCount", "0")
    form["WebhookType"] = target.webhook_type
    method = target.method.upper()
    if method == "GET":
        sep = "&" if urlsplit(target.url).query else "?"
        url = target.url + sep + urlencode(form)
        signature = twilio_signature(auth_token, url, {})
    else:
        url = target.url
        signature = twilio_signature(auth_token, url, form)
    headers = {
        "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": hashlib.sha256(signature.encode()).hexdigest()[:32],
    }
    status: int | None = None
    error: str | None = None
    try:
        check_loopback_url(target.url)  # re-checked at delivery time
        async with httpx.AsyncClient(trust_env=False, timeout=TIMEOUT_SECONDS) as client:
            if method == "GET":
                response = await client.get(url, headers=headers)
            else:
                response = await client.post(url, data=form, headers=headers)
            status = response.status_code
    except Exception as exc:  # network errors, refused targets: recorded only
        error = f"{type(exc).__name__}: {exc}"
    delivery = WebhookDelivery(event, url, method, form, signature, status, error)
    if journal is not None:
        journal.record(
            JournalEntry(
                service="twilio-webhook",
                method=method,
                path=target.url,
                status=status or 0,
                identity=form.get("Author") or form.get("Identity"),
                request=dict(form),
                response={"error": error} if error else None,
            )
        )
    return delivery
