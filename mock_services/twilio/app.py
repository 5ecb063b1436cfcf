"""``MockTwilioService``: Twilio Conversations v1 as a Starlette app (serve it with uvicorn).

Pipeline per request: authenticate (401/20003) → route (404/20404, 405/20004) → fault injection
→ handler (one store transaction) → journal entry → response; post-event webhooks go out after
the response, signed with the account's auth token, to loopback targets only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mock_services.journal import Journal, JournalEntry
from mock_services.twilio import errors as E
from mock_services.twilio.auth import Principal, authenticate
from mock_services.twilio.faults import Fault, FaultInjector
from mock_services.twilio.formats import TwilioLimits
from mock_services.twilio.ratelimit import ActionRateLimiter
from mock_services.twilio.resources import Context, ConversationsApi, Event, Form, Result
from mock_services.twilio.store import Record, TwilioStore
from mock_services.twilio.webhooks import WebhookDelivery, WebhookTarget, deliver
from twilio_e2ee.credentials import TwilioCredentials
from twilio_e2ee.errors import ConfigurationError

__all__ = ["MockTwilioService"]

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024
_SEG = r"[^/]+"
Handler = Callable[..., Result]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


def _fault_error(fault: Fault) -> E.TwilioApiError:
    """The answer of a ``rate_limit`` or ``server_error`` fault (nothing was applied)."""
    if fault.status == 429:
        return E.TwilioApiError(
            429,
            E.TOO_MANY_REQUESTS,
            "Too Many Requests",
            headers={"Retry-After": str(fault.retry_after)},
        )
    code = E.SERVICE_UNAVAILABLE if fault.status == 503 else E.INTERNAL_ERROR
    return E.TwilioApiError(fault.status, code, f"{_phrase(fault.status)} (injected)")


class DroppedConnection(Response):
    """Closes the client's connection without sending a byte (an answer lost in the network).

    ASGI has no "abort" message (an app that raises before answering gets a 500 from uvicorn),
    so this reaches the connection's transport through uvicorn's ``receive`` (bound to its
    request cycle) and closes it; the background task (webhooks) still runs, since the request
    was applied. On a server where the transport is out of reach it starts a response announcing
    a body and fails before sending it: the server then closes the connection mid-answer.
    """

    def __init__(self, background: BackgroundTask | None = None) -> None:
        super().__init__(status_code=500, background=background)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cycle = getattr(receive, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if isinstance(transport, asyncio.BaseTransport):
            transport.close()
            await asyncio.sleep(0)  # let uvicorn see the connection lost (no 500 after us)
            if self.background is not None:
                await self.background()
            return
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-length", b"1024"), (b"content-type", b"application/json")],
            }
        )
        if self.background is not None:
            await self.background()
        raise ConnectionAbortedError("mock Twilio dropped the connection (answer_lost fault)")


class MockTwilioService:
    """A stateful Twilio Conversations v1 mock.

    ``credentials`` name the account: REST calls authenticate with ``account_sid`` +
    ``auth_token`` or ``api_key_sid`` + ``api_secret``; ``service_sid`` exists from the start and
    is the default Conversations service. ``db_path`` keeps state in SQLite across restarts.
    ``webhooks_require_header`` mirrors Twilio: REST actions fire webhooks only with
    ``X-Twilio-Webhook-Enabled: true``.
    """

    def __init__(
        self,
        credentials: TwilioCredentials,
        *,
        db_path: str | Path | None = None,
        journal: Journal | None = None,
        limits: TwilioLimits | None = None,
        fault_seed: int = 0,
        webhooks_require_header: bool = True,
    ) -> None:
        if credentials.auth_token is None:
            raise ConfigurationError("the mock Twilio service needs credentials with an auth_token")
        self.credentials = credentials
        self.auth_token: str = credentials.auth_token
        self.journal = journal if journal is not None else Journal()
        self.limits = limits or TwilioLimits()
        self.faults = FaultInjector(fault_seed)
        self.webhooks_require_header = webhooks_require_header
        self.store = TwilioStore(db_path)
        self.api = ConversationsApi(self.store, credentials.account_sid, self.limits)
        self.deliveries: list[WebhookDelivery] = []
        rate = self.limits.actions_per_second
        self.rate_limiter = None if rate is None else ActionRateLimiter(rate)
        self._bootstrap()
        self._routes = self._route_table()
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._dispatch,
                    methods=["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"],
                )
            ],
            # A path the catch-all cannot match (a %0A in it; another method) still goes through
            # the pipeline, so it gets Twilio's 401/404/405 body instead of Starlette's text.
            exception_handlers={404: self._unrouted, 405: self._unrouted},
        )

    # --- state helpers for notebooks and tests ---------------------------------------------

    def _bootstrap(self) -> None:
        sid = self.credentials.service_sid
        with self.store.transaction():
            if (
                self.store.get("service", sid) is None
                and self.store.ord_of("service", self.credentials.account_sid, sid) is None
            ):
                self.api.create_service_record("Default Conversations Service", sid)
            if self.api.default_service_sid() is None:
                self.store.set_meta("default_chat_service_sid", sid)

    def conversations(self, service_sid: str | None = None) -> list[Record]:
        """Stored conversations of a service (default: the default service), oldest first."""
        parent = service_sid or self.api.default_service_sid() or self.credentials.service_sid
        return [r for _, r in self.store.children("conversation", parent)]

    def messages(self, conversation_sid: str) -> list[Record]:
        """Stored messages of a conversation in index order (raw records, as Twilio keeps them)."""
        return [r for _, r in self.store.children("message", conversation_sid)]

    def participants(self, conversation_sid: str) -> list[Record]:
        return [r for _, r in self.store.children("participant", conversation_sid)]

    def close(self) -> None:
        self.store.close()

    # --- routing ---------------------------------------------------------------------------

    def _route_table(self) -> list[tuple[re.Pattern[str], dict[str, Handler], bool]]:
        api = self.api
        table: list[tuple[str, dict[str, Handler], bool]] = [
            (
                "/v1/Configuration",
                {"GET": api.fetch_configuration, "POST": api.update_configuration},
                False,
            ),
            (
                "/v1/Configuration/Webhooks",
                {"GET": api.fetch_account_webhooks, "POST": api.update_account_webhooks},
                False,
            ),
            ("/v1/Services", {"GET": api.list_services, "POST": api.create_service}, False),
            (
                "/v1/Services/(?P<sid>[^/]+)",
                {"GET": api.fetch_service, "DELETE": api.delete_service},
                False,
            ),
            (
                "/v1/Services/(?P<svc>[^/]+)/Configuration",
                {"GET": api.fetch_service_configuration, "POST": api.update_service_configuration},
                True,
            ),
            (
                "/v1/Services/(?P<svc>[^/]+)/Configuration/Webhooks",
                {"GET": api.fetch_service_webhooks, "POST": api.update_service_webhooks},
                True,
            ),
        ]
        scoped: list[tuple[str, dict[str, Handler]]] = [
            ("/Conversations", {"GET": api.list_conversations, "POST": api.create_conversation}),
            (
                "/Conversations/(?P<sid>[^/]+)",
                {
                    "GET": api.fetch_conversation,
                    "POST": api.update_conversation,
                    "DELETE": api.delete_conversation,
                },
            ),
            (
                "/Conversations/(?P<conversation>[^/]+)/Participants",
                {"GET": api.list_participants, "POST": api.create_participant},
            ),
            (
                "/Conversations/(?P<conversation>[^/]+)/Participants/(?P<sid>[^/]+)",
                {
                    "GET": api.fetch_participant,
                    "POST": api.update_participant,
                    "DELETE": api.delete_participant,
                },
            ),
            (
                "/Conversations/(?P<conversation>[^/]+)/Messages",
                {"GET": api.list_messages, "POST": api.create_message},
            ),
            (
                "/Conversations/(?P<conversation>[^/]+)/Messages/(?P<sid>[^/]+)",
                {
                    "GET": api.fetch_message,
                    "POST": api.update_message,
                    "DELETE": api.delete_message,
                },
            ),
            (
                "/Conversations/(?P<conversation>[^/]+)/Webhooks",
                {"GET": api.list_webhooks, "POST": api.create_webhook},
            ),
            (
                "/Conversations/(?P<conversation>[^/]+)/Webhooks/(?P<sid>[^/]+)",
                {
                    "GET": api.fetch_webhook,
                    "POST": api.update_webhook,
                    "DELETE": api.delete_webhook,
                },
            ),
            ("/Users", {"GET": api.list_users, "POST": api.create_user}),
            (
                "/Users/(?P<sid>[^/]+)",
                {"GET": api.fetch_user, "POST": api.update_user, "DELETE": api.delete_user},
            ),
        ]
        self._admin_routes = len(table)  # account/service administration: not in client mode
        for suffix, handlers in scoped:
            table.append(("/v1" + suffix, handlers, False))
            table.append(("/v1/Services/(?P<svc>[^/]+)" + suffix, handlers, True))
        return [(re.compile(f"^{pattern}$"), handlers, s) for pattern, handlers, s in table]

    def _match(
        self, method: str, path: str, principal: Principal
    ) -> tuple[Handler, dict[str, str], bool]:
        for number, (pattern, handlers, scoped) in enumerate(self._routes):
            found = pattern.match(path)
            if found is None:
                continue
            if principal.identity is not None and number < self._admin_routes:
                raise E.TwilioApiError(
                    403, E.FORBIDDEN, "An access token cannot manage services or configuration"
                )
            handler = handlers.get(method)
            if handler is None:
                raise E.TwilioApiError(405, E.METHOD_NOT_ALLOWED, "Method not allowed")
            return handler, found.groupdict(), scoped
        raise E.not_found(path)

    # --- the pipeline ----------------------------------------------------------------------

    async def _unrouted(self, request: Request, exc: Exception) -> Response:
        return await self._dispatch(request)

    async def _dispatch(self, request: Request) -> Response:
        method = request.method
        path = request.url.path
        form = Form()
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_REQUEST_BYTES:
                    raise E.TwilioApiError(413, E.BAD_REQUEST, "Request entity too large")
                chunks.append(chunk)
            try:
                text = b"".join(chunks).decode("utf-8")
            except UnicodeDecodeError:
                raise E.bad_request("Request body is not UTF-8") from None
            if text and "json" in request.headers.get("content-type", ""):
                raise E.bad_request("Request body must be application/x-www-form-urlencoded")
            for key, value in parse_qsl(text, keep_blank_values=True):
                form.setdefault(key, []).append(value)
        except E.TwilioApiError as exc:
            return self._error(method, path, form, exc, None)
        try:
            return await self._handle(request, method, path, form)
        except Exception:  # a bug in the mock: answer like Twilio, never a traceback page
            log.exception("mock Twilio failed on %s %s", method, path)
            error = E.TwilioApiError(500, E.INTERNAL_ERROR, "Internal server error")
            return self._error(method, path, form, error, None)

    async def _handle(self, request: Request, method: str, path: str, form: Form) -> Response:
        principal: Principal | None = None
        ctx: Context | None = None
        try:
            principal = authenticate(
                request.headers,
                account_sid=self.credentials.account_sid,
                auth_token=self.auth_token,
                api_key_sid=self.credentials.api_key_sid,
                api_secret=self.credentials.api_secret,
            )
            handler, params, scoped = self._match(method, path, principal)
            ctx = Context(
                account_sid=self.credentials.account_sid,
                path=path,
                form=form,
                query=parse_qs(request.url.query, keep_blank_values=True),
                scoped=scoped,
                identity=principal.identity,
                webhooks_enabled=(
                    not self.webhooks_require_header
                    or request.headers.get("x-twilio-webhook-enabled", "").lower() == "true"
                ),
            )
            ctx.service_sid = params.pop("svc", None) or (
                principal.service_sid or self.api.default_service_sid()
            )
            if principal.identity is not None and ctx.service_sid != principal.service_sid:
                raise E.TwilioApiError(
                    403, E.FORBIDDEN, "Access Token is not valid for this service"
                )
            fault = self.faults.draw(method, path)
            if fault is not None and fault.kind != "answer_lost":
                raise _fault_error(fault)
            if self.rate_limiter is not None and method in ("POST", "DELETE"):
                scope = params.get("conversation") or ctx.service_sid or ""
                if not self.rate_limiter.allow(scope):
                    raise E.TwilioApiError(
                        429,
                        E.ACTIONS_PER_SECOND,
                        "Actions per second limit exceeded",
                        headers={"Retry-After": "1"},
                    )
            status, body = handler(ctx, **params)
        except E.TwilioApiError as exc:
            return self._error(method, path, form, exc, ctx, principal)
        task = BackgroundTask(self._send_events, list(ctx.events)) if ctx.events else None
        who = ctx.author or principal.identity or principal.username
        if fault is not None:  # answer_lost: applied and stored, but the client never hears
            self._record(
                method,
                path,
                0 if fault.drop_connection else fault.status,
                who,
                form,
                {
                    "mock_fault": "answer_lost",
                    "connection_dropped": fault.drop_connection,
                    "applied_status": status,
                    "applied": body,
                },
            )
            if fault.drop_connection:
                return DroppedConnection(background=task)
            phrase = _phrase(fault.status)
            return PlainTextResponse(
                f"{fault.status} {phrase}\n", status_code=fault.status, background=task
            )
        self._record(method, path, status, who, form, body)
        if status == 204:
            return Response(status_code=204, background=task)
        return JSONResponse(body, status_code=status, background=task)

    def _error(
        self,
        method: str,
        path: str,
        form: Form,
        exc: E.TwilioApiError,
        ctx: Context | None,
        principal: Principal | None = None,
    ) -> Response:
        who = (ctx.author if ctx else None) or (
            (principal.identity or principal.username) if principal else None
        )
        body = exc.body
        self._record(method, path, body["status"], who, form, body)
        return JSONResponse(body, status_code=body["status"], headers=exc.headers)

    def _record(
        self, method: str, path: str, status: int, who: str | None, form: Form, body: Any
    ) -> None:
        request = form.flat() or None
        if request and "Attributes" in request:  # show attributes parsed, as notebooks want them
            with contextlib.suppress(TypeError, ValueError):
                request = {**request, "Attributes": json.loads(request["Attributes"])}
        self.journal.record(
            JournalEntry(
                service="twilio",
                method=method,
                path=path,
                status=status,
                identity=who,
                request=request,
                response=body,
            )
        )

    # --- webhooks --------------------------------------------------------------------------

    def _targets(self, event: Event) -> list[WebhookTarget]:
        targets: list[WebhookTarget] = []
        service = self.store.get("service", event.service_sid)
        hooks = service["_webhooks"] if service else None
        if not hooks or not (hooks.get("post_webhook_url") or hooks.get("pre_webhook_url")):
            hooks = self.api.account_webhooks()
        if hooks.get("post_webhook_url") and event.name in hooks.get("filters", []):
            targets.append(
                WebhookTarget(
                    hooks["post_webhook_url"], hooks.get("method", "POST"), None, "post_webhook"
                )
            )
        if event.conversation_sid:
            for _, hook in self.store.children("webhook", event.conversation_sid):
                config = hook["configuration"]
                if hook["target"] == "webhook" and event.name in config.get("filters", []):
                    targets.append(
                        WebhookTarget(config["url"], config["method"], hook["sid"], "webhook")
                    )
                elif hook["target"] == "trigger" and event.name == "onMessageAdded":
                    body = str(event.params.get("Body") or "")
                    if any(t and t.lower() in body.lower() for t in config.get("triggers", [])):
                        targets.append(
                            WebhookTarget(config["url"], config["method"], hook["sid"], "trigger")
                        )
        return targets

    async def _send_events(self, events: list[Event]) -> None:
        for event in events:
            for target in self._targets(event):
                delivery = await deliver(
                    target,
                    event.name,
                    event.params,
                    auth_token=self.auth_token,
                    journal=self.journal,
                )
                self.deliveries.append(delivery)
