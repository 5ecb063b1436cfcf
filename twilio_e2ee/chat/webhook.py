"""A webhook receiver for real Twilio (and the mock): ``onMessageAdded`` → decrypted messages.

A Starlette app that checks ``X-Twilio-Signature`` with the SDK's
``twilio.request_validator.RequestValidator`` (HMAC-SHA1 of the public URL and the sorted form
parameters under the account's auth token), then decrypts the message with the matching
:class:`EncryptedConversation` and hands the result to your callback. Forged requests get 403 and
reach nothing. Twilio retries deliveries, so a message SID is delivered to the callback once.

Behind a proxy or tunnel (ngrok), pass ``public_url``: the URL Twilio was configured with, since
the signature covers it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from twilio_e2ee.chat.results import FailureReason, MessageFailure, ReceivedItem, WireMessage

if TYPE_CHECKING:
    from twilio_e2ee.chat.conversation import EncryptedConversation

__all__ = ["WebhookReceiver", "wire_from_webhook"]

MAX_FORM_BYTES = 256 * 1024


def _parse_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def wire_from_webhook(params: Mapping[str, str]) -> WireMessage | None:
    """A :class:`WireMessage` from ``onMessageAdded`` form parameters (None if incomplete)."""
    conversation_sid = params.get("ConversationSid")
    sid = params.get("MessageSid")
    index = params.get("Index")
    if not conversation_sid or not sid or index is None:
        return None
    try:
        idx = int(index)
    except ValueError:
        return None
    return WireMessage(
        conversation_sid=conversation_sid,
        sid=sid,
        index=idx,
        author=params.get("Author") or None,
        body=params.get("Body"),
        attributes=params.get("Attributes"),
        date_created=_parse_date(params.get("DateCreated")),
    )


class WebhookReceiver:
    """Receive signed Twilio webhooks and deliver decrypted messages.

    Args:
        auth_token: the account's auth token (it keys the signature).
        on_message: called with each decrypted message or per-message failure.
        path: the route to serve.
        public_url: the full URL Twilio posts to, if it differs from what the app sees.
    """

    def __init__(
        self,
        auth_token: str,
        on_message: Callable[[ReceivedItem], None],
        *,
        path: str = "/twilio/conversations",
        public_url: str | None = None,
        remember: int = 10_000,
    ) -> None:
        self._validator = RequestValidator(auth_token)
        self._on_message = on_message
        self.path = path
        self.public_url = public_url
        self._conversations: dict[str, EncryptedConversation] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        self.rejected = 0
        self.app = Starlette(routes=[Route(path, self._handle, methods=["POST", "GET"])])

    def add(self, conversation: EncryptedConversation) -> None:
        """Decrypt messages of this conversation (others are acknowledged and ignored)."""
        self._conversations[conversation.sid] = conversation

    def _url(self, request: Request) -> str:
        if self.public_url:
            query = request.url.query
            return self.public_url + (f"?{query}" if query and "?" not in self.public_url else "")
        return str(request.url)

    def _first_delivery(self, sid: str) -> bool:
        with self._lock:
            if sid in self._seen:
                return False
            self._seen[sid] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            return True

    async def _handle(self, request: Request) -> Response:
        signature = request.headers.get("X-Twilio-Signature", "")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_FORM_BYTES:
            self.rejected += 1
            return JSONResponse({"error": "request too large"}, status_code=413)
        if request.method == "GET":
            # GET hooks carry the event in the query string; only the URL is signed.
            signed: dict[str, str] = {}
            params = dict(parse_qsl(request.url.query, keep_blank_values=True))
        else:
            body = await request.body()
            if len(body) > MAX_FORM_BYTES:
                self.rejected += 1
                return JSONResponse({"error": "request too large"}, status_code=413)
            try:
                params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                params = {}
            signed = params
        if not signature or not self._validator.validate(self._url(request), signed, signature):
            self.rejected += 1
            return JSONResponse({"error": "invalid X-Twilio-Signature"}, status_code=403)
        if params.get("EventType") != "onMessageAdded":
            return Response(status_code=204)
        wire = wire_from_webhook(params)
        if wire is None:
            return JSONResponse({"error": "incomplete onMessageAdded event"}, status_code=400)
        conversation = self._conversations.get(wire.conversation_sid)
        if conversation is None or not self._first_delivery(wire.sid):
            return Response(status_code=204)
        item = await asyncio.to_thread(conversation.open, wire)
        if isinstance(item, MessageFailure) and item.reason is FailureReason.LOOKUP_FAILED:
            with self._lock:  # the card service is down: let Twilio deliver it again later
                self._seen.pop(wire.sid, None)
            return JSONResponse({"error": "card lookup failed, retry later"}, status_code=503)
        self._on_message(item)
        return Response(status_code=204)
