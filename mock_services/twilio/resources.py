"""The Conversations v1 resources: validation, state changes and rendering (no HTTP here).

Each handler takes a :class:`Context` (the parsed request) and path parameters, changes the store
inside one transaction, queues post-event webhooks on the context, and returns ``(status, body)``
in Twilio's JSON shape, or raises :class:`~mock_services.twilio.errors.TwilioApiError`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mock_services.twilio import errors as E
from mock_services.twilio.formats import (
    CANONICAL_BASE,
    TwilioLimits,
    check_attributes,
    is_sid,
    parse_datetime,
    utc_now,
)
from mock_services.twilio.pagination import PageRequest, paginate
from mock_services.twilio.store import Record, TwilioStore
from mock_services.twilio.webhooks import POST_EVENTS, PRE_EVENTS, check_loopback_url

__all__ = ["Context", "ConversationsApi", "Event", "Form"]

Result = tuple[int, dict[str, Any] | None]
STATES = ("initializing", "inactive", "active", "closed")
MAX_CONVERSATION_WEBHOOKS = 5


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class Form(dict[str, list[str]]):
    """Form-encoded parameters (repeated keys kept, dotted names literal)."""

    def one(self, name: str) -> str | None:
        values = self.get(name)
        return values[-1] if values else None

    def many(self, name: str) -> list[str]:
        return list(self.get(name, []))

    def flat(self) -> dict[str, Any]:
        return {k: v[0] if len(v) == 1 else list(v) for k, v in self.items()}


@dataclass
class Event:
    """A post-event webhook to send once the request has been answered."""

    name: str
    service_sid: str
    conversation_sid: str | None
    params: dict[str, Any]


@dataclass
class Context:
    """One authenticated request, as the handlers see it."""

    account_sid: str
    path: str
    form: Form
    query: dict[str, list[str]]
    service_sid: str | None = None  # from the path, or the default service
    scoped: bool = False  # reached through /v1/Services/{IS}/...
    identity: str | None = None  # access-token ("client mode") requests only
    webhooks_enabled: bool = False
    events: list[Event] = field(default_factory=list)
    author: str | None = None  # for the journal


class ConversationsApi:
    """Conversations v1 over a :class:`TwilioStore`."""

    def __init__(self, store: TwilioStore, account_sid: str, limits: TwilioLimits) -> None:
        self.store = store
        self.account_sid = account_sid
        self.limits = limits

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _prefix(ctx: Context) -> str:
        return f"/v1/Services/{ctx.service_sid}" if ctx.scoped else "/v1"

    def _text(self, ctx: Context, name: str, limit: int | None = None) -> str | None:
        value = ctx.form.one(name)
        if value is not None and limit is not None and len(value) > limit:
            raise E.bad_request(f"{name} is too long (at most {limit} characters)")
        return value

    def _required(self, ctx: Context, name: str, limit: int | None = None) -> str:
        value = self._text(ctx, name, limit)
        if not value:
            raise E.bad_request(f"Missing required parameter {name} in the post body")
        return value

    def _attributes(self, ctx: Context, limit: int, default: str | None = "{}") -> str | None:
        value = ctx.form.one("Attributes")
        return default if value is None else check_attributes(value, limit)

    def _date(self, ctx: Context, name: str) -> str | None:
        value = ctx.form.one(name)
        return None if value is None else parse_datetime(value, name)

    def _role(self, ctx: Context) -> str | None:
        value = ctx.form.one("RoleSid")
        if value is not None and not is_sid(value, "RL"):
            raise E.bad_request(f"Invalid RoleSid {value!r}")
        return value

    def _queue(self, ctx: Context, name: str, conversation_sid: str | None, **params: Any) -> None:
        if not ctx.webhooks_enabled:
            return
        assert ctx.service_sid is not None
        base = {"AccountSid": self.account_sid, "ChatServiceSid": ctx.service_sid}
        if conversation_sid:
            base["ConversationSid"] = conversation_sid
        base["Source"] = "SDK" if ctx.identity else "API"
        if ctx.identity:
            base["ClientIdentity"] = ctx.identity
        ctx.events.append(Event(name, ctx.service_sid, conversation_sid, {**base, **params}))

    @staticmethod
    def _public(record: Record) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def _page(
        self,
        ctx: Context,
        items: list[tuple[int, Record]],
        *,
        key: str,
        list_path: str,
        render: Callable[[Record], dict[str, Any]],
        kind: str,
        parent: str,
        by_index: bool = False,
        max_size: int | None = None,
        default_size: int | None = None,
        filters: tuple[str, ...] = (),
    ) -> Result:
        request = PageRequest.parse(
            ctx.query,
            default_size=default_size or self.limits.default_page_size,
            max_size=max_size or self.limits.max_page_size,
            filters=filters,
        )
        descending = False
        if "Order" in filters:
            order = (ctx.query.get("Order") or ["asc"])[-1]
            if order not in ("asc", "desc"):
                raise E.bad_request("Order must be asc or desc")
            descending = order == "desc"

        def resolve(token: str) -> int | None:
            if by_index:
                return int(token) if token.isdigit() else None
            return self.store.ord_of(kind, parent, token)

        def token_of(ord_: int, rec: Record) -> str:
            return str(ord_) if by_index else str(rec["sid"])

        body = paginate(
            items,
            request,
            key=key,
            list_url=CANONICAL_BASE + list_path,
            render=render,
            token_of=token_of,
            resolve=resolve,
            descending=descending,
        )
        return 200, body

    # --- lookups ---------------------------------------------------------------------------

    def _service(self, ctx: Context) -> Record:
        sid = ctx.service_sid
        record = self.store.get("service", sid) if sid else None
        if record is None:
            raise E.not_found(ctx.path)
        return record

    def _conversation(self, ctx: Context, ref: str) -> Record:
        service = self._service(ctx)
        if is_sid(ref, "CH"):
            record = self.store.get("conversation", ref, parent=service["sid"])
        else:
            record = self.store.find("conversation", service["sid"], ref)
        if record is None:
            raise E.not_found(ctx.path)
        return record

    def _participant(self, ctx: Context, conversation: Record, ref: str) -> Record:
        if is_sid(ref, "MB"):
            record = self.store.get("participant", ref, parent=conversation["sid"])
        else:
            record = self.store.find("participant", conversation["sid"], ref)
        if record is None:
            raise E.not_found(ctx.path)
        return record

    def _message(self, ctx: Context, conversation: Record, ref: str) -> Record:
        record = self.store.get("message", ref, parent=conversation["sid"])
        if record is None:
            raise E.not_found(ctx.path)
        return record

    def _user(self, ctx: Context, ref: str) -> Record:
        service = self._service(ctx)
        if is_sid(ref, "US"):
            record = self.store.get("user", ref, parent=service["sid"])
        else:
            record = self.store.find("user", service["sid"], ref)
        if record is None:
            raise E.not_found(ctx.path)
        return record

    # --- services and configuration --------------------------------------------------------

    def create_service_record(self, friendly_name: str, sid: str | None = None) -> Record:
        now = utc_now()
        record: Record = {
            "account_sid": self.account_sid,
            "sid": sid or new_sid("IS"),
            "friendly_name": friendly_name,
            "date_created": now,
            "date_updated": now,
            "_roles": {
                "service_user": new_sid("RL"),
                "service_admin": new_sid("RL"),
                "channel_user": new_sid("RL"),
                "channel_admin": new_sid("RL"),
            },
            "_reachability_enabled": False,
            "_webhooks": {
                "pre_webhook_url": None,
                "post_webhook_url": None,
                "filters": [],
                "method": "POST",
            },
        }
        return self.store.insert("service", self.account_sid, record)

    def render_service(self, record: Record) -> dict[str, Any]:
        url = f"{CANONICAL_BASE}/v1/Services/{record['sid']}"
        links = {
            name: f"{url}/{path}"
            for name, path in (
                ("conversations", "Conversations"),
                ("users", "Users"),
                ("roles", "Roles"),
                ("bindings", "Bindings"),
                ("configuration", "Configuration"),
                ("participant_conversations", "ParticipantConversations"),
            )
        }
        return {**self._public(record), "url": url, "links": links}

    def list_services(self, ctx: Context) -> Result:
        items = self.store.children("service", self.account_sid)
        return self._page(
            ctx,
            items,
            key="services",
            list_path="/v1/Services",
            render=self.render_service,
            kind="service",
            parent=self.account_sid,
        )

    def create_service(self, ctx: Context) -> Result:
        name = self._required(ctx, "FriendlyName", self.limits.friendly_name_chars)
        with self.store.transaction():
            record = self.create_service_record(name)
        return 201, self.render_service(record)

    def fetch_service(self, ctx: Context, sid: str) -> Result:
        ctx.service_sid = sid
        return 200, self.render_service(self._service(ctx))

    def delete_service(self, ctx: Context, sid: str) -> Result:
        ctx.service_sid = sid
        record = self._service(ctx)
        self.store.delete(record["sid"])
        return 204, None

    def default_service_sid(self) -> str | None:
        value = self.store.get_meta("default_chat_service_sid")
        return None if value is None else str(value)

    def render_configuration(self) -> dict[str, Any]:
        url = f"{CANONICAL_BASE}/v1/Configuration"
        return {
            "account_sid": self.account_sid,
            "default_chat_service_sid": self.default_service_sid(),
            "default_messaging_service_sid": self.store.get_meta("default_messaging_service_sid"),
            "default_inactive_timer": self.store.get_meta("default_inactive_timer"),
            "default_closed_timer": self.store.get_meta("default_closed_timer"),
            "url": url,
            "links": {"service": f"{url}/Webhooks", "webhooks": f"{url}/Webhooks"},
        }

    def fetch_configuration(self, ctx: Context) -> Result:
        return 200, self.render_configuration()

    def update_configuration(self, ctx: Context) -> Result:
        service = ctx.form.one("DefaultChatServiceSid")
        messaging = ctx.form.one("DefaultMessagingServiceSid")
        if service is not None and self.store.get("service", service) is None:
            raise E.bad_request(f"Invalid DefaultChatServiceSid {service!r}")
        if messaging is not None and not is_sid(messaging, "MG"):
            raise E.bad_request(f"Invalid DefaultMessagingServiceSid {messaging!r}")
        with self.store.transaction():
            for key, value in (
                ("default_chat_service_sid", service),
                ("default_messaging_service_sid", messaging),
                ("default_inactive_timer", ctx.form.one("DefaultInactiveTimer")),
                ("default_closed_timer", ctx.form.one("DefaultClosedTimer")),
            ):
                if value is not None:
                    self.store.set_meta(key, value)
        return 200, self.render_configuration()

    def _webhook_settings(self, ctx: Context, current: dict[str, Any]) -> dict[str, Any]:
        updated = dict(current)
        for param, key in (
            ("PreWebhookUrl", "pre_webhook_url"),
            ("PostWebhookUrl", "post_webhook_url"),
        ):
            value = ctx.form.one(param)
            if value is not None:
                updated[key] = check_loopback_url(value) if value else None
        if "Filters" in ctx.form:
            filters = ctx.form.many("Filters")
            unknown = [f for f in filters if f not in PRE_EVENTS | POST_EVENTS]
            if unknown:
                raise E.bad_request(f"Invalid Filters value(s): {', '.join(unknown)}")
            updated["filters"] = filters
        method = ctx.form.one("Method")
        if method is not None:
            if method.upper() not in ("GET", "POST"):
                raise E.bad_request("Method must be GET or POST")
            updated["method"] = method.upper()
        return updated

    def account_webhooks(self) -> dict[str, Any]:
        value = self.store.get_meta("account_webhooks")
        if value is None:
            return {
                "pre_webhook_url": None,
                "post_webhook_url": None,
                "filters": [],
                "method": "POST",
                "target": "webhook",
            }
        return dict(value)

    def _render_account_webhooks(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            **self.account_webhooks(),
            "url": f"{CANONICAL_BASE}/v1/Configuration/Webhooks",
        }

    def fetch_account_webhooks(self, ctx: Context) -> Result:
        return 200, self._render_account_webhooks()

    def update_account_webhooks(self, ctx: Context) -> Result:
        updated = self._webhook_settings(ctx, self.account_webhooks())
        target = ctx.form.one("Target")
        if target is not None:
            if target not in ("webhook", "flex"):
                raise E.bad_request("Target must be webhook or flex")
            updated["target"] = target
        self.store.set_meta("account_webhooks", updated)
        return 200, self._render_account_webhooks()

    def _render_service_webhooks(self, service: Record) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "chat_service_sid": service["sid"],
            **service["_webhooks"],
            "url": f"{CANONICAL_BASE}/v1/Services/{service['sid']}/Configuration/Webhooks",
        }

    def fetch_service_webhooks(self, ctx: Context) -> Result:
        return 200, self._render_service_webhooks(self._service(ctx))

    def update_service_webhooks(self, ctx: Context) -> Result:
        with self.store.transaction():
            service = self._service(ctx)
            service["_webhooks"] = self._webhook_settings(ctx, service["_webhooks"])
            self.store.update(service["sid"], service)
        return 200, self._render_service_webhooks(service)

    def _render_service_configuration(self, service: Record) -> dict[str, Any]:
        url = f"{CANONICAL_BASE}/v1/Services/{service['sid']}/Configuration"
        roles = service["_roles"]
        return {
            "chat_service_sid": service["sid"],
            "default_conversation_creator_role_sid": roles["channel_admin"],
            "default_conversation_role_sid": roles["channel_user"],
            "default_chat_service_role_sid": roles["service_user"],
            "url": url,
            "links": {"notifications": f"{url}/Notifications", "webhooks": f"{url}/Webhooks"},
            "reachability_enabled": service["_reachability_enabled"],
        }

    def fetch_service_configuration(self, ctx: Context) -> Result:
        return 200, self._render_service_configuration(self._service(ctx))

    def update_service_configuration(self, ctx: Context) -> Result:
        with self.store.transaction():
            service = self._service(ctx)
            for param, role in (
                ("DefaultConversationCreatorRoleSid", "channel_admin"),
                ("DefaultConversationRoleSid", "channel_user"),
                ("DefaultChatServiceRoleSid", "service_user"),
            ):
                value = ctx.form.one(param)
                if value is not None:
                    if not is_sid(value, "RL"):
                        raise E.bad_request(f"Invalid {param} {value!r}")
                    service["_roles"][role] = value
            reach = ctx.form.one("ReachabilityEnabled")
            if reach is not None:
                service["_reachability_enabled"] = reach.lower() == "true"
            self.store.update(service["sid"], service)
        return 200, self._render_service_configuration(service)

    # --- conversations ---------------------------------------------------------------------

    def render_conversation(self, ctx: Context, record: Record) -> dict[str, Any]:
        url = f"{CANONICAL_BASE}{self._prefix(ctx)}/Conversations/{record['sid']}"
        links = {
            "participants": f"{url}/Participants",
            "messages": f"{url}/Messages",
            "webhooks": f"{url}/Webhooks",
        }
        return {**self._public(record), "url": url, "links": links}

    def _conversation_params(self, ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {}
        name = self._text(ctx, "FriendlyName", self.limits.friendly_name_chars)
        if name is not None:
            out["friendly_name"] = name
        unique = self._text(ctx, "UniqueName", self.limits.friendly_name_chars)
        if unique is not None:
            out["unique_name"] = unique or None
        attributes = self._attributes(ctx, self.limits.conversation_attributes_bytes, None)
        if attributes is not None:
            out["attributes"] = attributes
        state = ctx.form.one("State")
        if state is not None:
            if state not in STATES:
                raise E.bad_request(f"Invalid State {state!r}: use one of {', '.join(STATES)}")
            out["state"] = state
        messaging = ctx.form.one("MessagingServiceSid")
        if messaging is not None:
            if not is_sid(messaging, "MG"):
                raise E.bad_request(f"Invalid MessagingServiceSid {messaging!r}")
            out["messaging_service_sid"] = messaging
        for param, key in (("DateCreated", "date_created"), ("DateUpdated", "date_updated")):
            value = self._date(ctx, param)
            if value is not None:
                out[key] = value
        timers = {
            key: ctx.form.one(param)
            for param, key in (("Timers.Inactive", "inactive"), ("Timers.Closed", "closed"))
            if ctx.form.one(param) is not None
        }
        if timers:
            out["_timers"] = timers
        return out

    def _check_unique_name(self, service_sid: str, unique: str | None, own: str | None) -> None:
        if unique is None:
            return
        existing = self.store.find("conversation", service_sid, unique)
        if existing is not None and existing["sid"] != own:
            raise E.TwilioApiError(
                409,
                E.UNIQUE_NAME_EXISTS,
                f"Conversation with provided unique name already exists: {unique}",
            )

    def _conversation_event_params(self, record: Record) -> dict[str, Any]:
        return {
            "FriendlyName": record["friendly_name"],
            "UniqueName": record["unique_name"],
            "Attributes": record["attributes"],
            "DateCreated": record["date_created"],
            "DateUpdated": record["date_updated"],
            "State": record["state"],
            "MessagingServiceSid": record["messaging_service_sid"],
        }

    def list_conversations(self, ctx: Context) -> Result:
        service = self._service(ctx)
        items = self.store.children("conversation", service["sid"])
        states = ctx.query.get("State")
        if states:
            state = states[-1]
            items = [(o, r) for o, r in items if r["state"] == state]
        return self._page(
            ctx,
            items,
            key="conversations",
            list_path=f"{self._prefix(ctx)}/Conversations",
            render=lambda r: self.render_conversation(ctx, r),
            kind="conversation",
            parent=service["sid"],
            filters=("StartDate", "EndDate", "State"),
        )

    def create_conversation(self, ctx: Context) -> Result:
        params = self._conversation_params(ctx)
        with self.store.transaction():
            service = self._service(ctx)
            self._check_unique_name(service["sid"], params.get("unique_name"), None)
            now = utc_now()
            record: Record = {
                "account_sid": self.account_sid,
                "chat_service_sid": service["sid"],
                "messaging_service_sid": params.get("messaging_service_sid"),
                "sid": new_sid("CH"),
                "friendly_name": params.get("friendly_name"),
                "unique_name": params.get("unique_name"),
                "attributes": params.get("attributes", "{}"),
                "state": params.get("state", "active"),
                "date_created": params.get("date_created", now),
                "date_updated": params.get("date_updated", params.get("date_created", now)),
                "timers": {},
                "bindings": None,
                "_next_index": 0,
                "_timers": params.get("_timers", {}),
            }
            self.store.insert("conversation", service["sid"], record, alt=record["unique_name"])
        self._queue(
            ctx, "onConversationAdded", record["sid"], **self._conversation_event_params(record)
        )
        return 201, self.render_conversation(ctx, record)

    def fetch_conversation(self, ctx: Context, sid: str) -> Result:
        return 200, self.render_conversation(ctx, self._conversation(ctx, sid))

    def update_conversation(self, ctx: Context, sid: str) -> Result:
        params = self._conversation_params(ctx)
        with self.store.transaction():
            record = self._conversation(ctx, sid)
            old_state = record["state"]
            if "unique_name" in params:
                self._check_unique_name(
                    record["chat_service_sid"], params["unique_name"], record["sid"]
                )
            timers = params.pop("_timers", None)
            if timers:
                record["_timers"] = {**record.get("_timers", {}), **timers}
            record.update(params)
            if "date_updated" not in params:
                record["date_updated"] = utc_now()
            self.store.update(record["sid"], record, alt=record["unique_name"])
        event_params = self._conversation_event_params(record)
        self._queue(ctx, "onConversationUpdated", record["sid"], **event_params)
        if record["state"] != old_state:
            self._queue(
                ctx,
                "onConversationStateUpdated",
                record["sid"],
                StateFrom=old_state,
                StateTo=record["state"],
                Reason="API",
                **event_params,
            )
        return 200, self.render_conversation(ctx, record)

    def delete_conversation(self, ctx: Context, sid: str) -> Result:
        record = self._conversation(ctx, sid)
        self.store.delete(record["sid"])
        self._queue(
            ctx,
            "onConversationRemoved",
            record["sid"],
            DateRemoved=utc_now(),
            **self._conversation_event_params(record),
        )
        return 204, None

    # --- participants ----------------------------------------------------------------------

    def render_participant(self, ctx: Context, record: Record) -> dict[str, Any]:
        url = (
            f"{CANONICAL_BASE}{self._prefix(ctx)}/Conversations/{record['conversation_sid']}"
            f"/Participants/{record['sid']}"
        )
        return {**self._public(record), "url": url}

    def _participant_event_params(self, record: Record) -> dict[str, Any]:
        return {
            "ParticipantSid": record["sid"],
            "Identity": record["identity"],
            "Attributes": record["attributes"],
            "RoleSid": record["role_sid"],
            "DateCreated": record["date_created"],
            "DateUpdated": record["date_updated"],
        }

    def list_participants(self, ctx: Context, conversation: str) -> Result:
        conv = self._conversation(ctx, conversation)
        items = self.store.children("participant", conv["sid"])
        return self._page(
            ctx,
            items,
            key="participants",
            list_path=f"{self._prefix(ctx)}/Conversations/{conv['sid']}/Participants",
            render=lambda r: self.render_participant(ctx, r),
            kind="participant",
            parent=conv["sid"],
        )

    def _ensure_user(self, ctx: Context, service: Record, identity: str) -> None:
        if self.store.find("user", service["sid"], identity) is None:
            self.store.insert(
                "user", service["sid"], self._new_user(service, identity), alt=identity
            )

    def create_participant(self, ctx: Context, conversation: str) -> Result:
        identity = self._text(ctx, "Identity", self.limits.identity_chars)
        address = ctx.form.one("MessagingBinding.Address")
        if not identity and not address:
            raise E.bad_request(
                "Missing required parameter: either Identity or MessagingBinding.Address"
            )
        attributes = self._attributes(ctx, self.limits.participant_attributes_bytes)
        role = self._role(ctx)
        created = self._date(ctx, "DateCreated")
        updated = self._date(ctx, "DateUpdated")
        with self.store.transaction():
            conv = self._conversation(ctx, conversation)
            service = self._service(ctx)
            if identity and self.store.find("participant", conv["sid"], identity) is not None:
                raise E.TwilioApiError(409, E.PARTICIPANT_EXISTS, "Participant already exists")
            if (
                self.store.count("participant", conv["sid"])
                >= self.limits.participants_per_conversation
            ):
                raise E.TwilioApiError(
                    403,
                    E.PARTICIPANTS_LIMIT,
                    "Participants limit exceeded: at most "
                    f"{self.limits.participants_per_conversation} per conversation",
                )
            binding = None
            if address:
                binding = {
                    "type": "sms",
                    "address": address,
                    "proxy_address": ctx.form.one("MessagingBinding.ProxyAddress"),
                }
                projected = ctx.form.one("MessagingBinding.ProjectedAddress")
                if projected:
                    binding = {"type": "sms", "projected_address": projected}
            now = utc_now()
            record: Record = {
                "account_sid": self.account_sid,
                "conversation_sid": conv["sid"],
                "sid": new_sid("MB"),
                "identity": identity or None,
                "attributes": attributes,
                "messaging_binding": binding,
                "role_sid": role or service["_roles"]["channel_user"],
                "date_created": created or now,
                "date_updated": updated or created or now,
                "last_read_message_index": None,
                "last_read_timestamp": None,
            }
            self.store.insert("participant", conv["sid"], record, alt=identity or None)
            if identity:
                self._ensure_user(ctx, service, identity)
        self._queue(
            ctx, "onParticipantAdded", conv["sid"], **self._participant_event_params(record)
        )
        return 201, self.render_participant(ctx, record)

    def fetch_participant(self, ctx: Context, conversation: str, sid: str) -> Result:
        conv = self._conversation(ctx, conversation)
        return 200, self.render_participant(ctx, self._participant(ctx, conv, sid))

    def update_participant(self, ctx: Context, conversation: str, sid: str) -> Result:
        attributes = self._attributes(ctx, self.limits.participant_attributes_bytes, None)
        role = self._role(ctx)
        identity = self._text(ctx, "Identity", self.limits.identity_chars)
        created = self._date(ctx, "DateCreated")
        updated = self._date(ctx, "DateUpdated")
        last_read = ctx.form.one("LastReadMessageIndex")
        if last_read is not None and not (last_read.isdigit() or last_read == ""):
            raise E.bad_request("LastReadMessageIndex must be a non-negative integer")
        with self.store.transaction():
            conv = self._conversation(ctx, conversation)
            record = self._participant(ctx, conv, sid)
            if identity and identity != record["identity"]:
                if self.store.find("participant", conv["sid"], identity) is not None:
                    raise E.TwilioApiError(409, E.PARTICIPANT_EXISTS, "Participant already exists")
                record["identity"] = identity
                self._ensure_user(ctx, self._service(ctx), identity)
            if attributes is not None:
                record["attributes"] = attributes
            if role is not None:
                record["role_sid"] = role
            if created is not None:
                record["date_created"] = created
            if last_read is not None:
                record["last_read_message_index"] = int(last_read) if last_read else None
                record["last_read_timestamp"] = utc_now() if last_read else None
            timestamp = ctx.form.one("LastReadTimestamp")
            if timestamp is not None:
                record["last_read_timestamp"] = timestamp or None
            record["date_updated"] = updated or utc_now()
            self.store.update(record["sid"], record, alt=record["identity"])
        self._queue(
            ctx, "onParticipantUpdated", conv["sid"], **self._participant_event_params(record)
        )
        return 200, self.render_participant(ctx, record)

    def delete_participant(self, ctx: Context, conversation: str, sid: str) -> Result:
        conv = self._conversation(ctx, conversation)
        record = self._participant(ctx, conv, sid)
        self.store.delete(record["sid"])
        self._queue(
            ctx,
            "onParticipantRemoved",
            conv["sid"],
            DateRemoved=utc_now(),
            **self._participant_event_params(record),
        )
        return 204, None

    # --- messages --------------------------------------------------------------------------

    def render_message(self, ctx: Context, record: Record) -> dict[str, Any]:
        url = (
            f"{CANONICAL_BASE}{self._prefix(ctx)}/Conversations/{record['conversation_sid']}"
            f"/Messages/{record['sid']}"
        )
        links = {
            "delivery_receipts": f"{url}/Receipts",
            "channel_metadata": f"{url}/ChannelMetadata",
        }
        return {**self._public(record), "url": url, "links": links}

    def _message_event_params(self, record: Record) -> dict[str, Any]:
        return {
            "MessageSid": record["sid"],
            "Index": record["index"],
            "Author": record["author"],
            "Body": record["body"],
            "Attributes": record["attributes"],
            "ParticipantSid": record["participant_sid"],
            "DateCreated": record["date_created"],
        }

    def _body(self, ctx: Context) -> str | None:
        body = ctx.form.one("Body")
        if body is not None and len(body.encode("utf-8")) > self.limits.message_body_bytes:
            raise E.TwilioApiError(
                400,
                E.MESSAGE_BODY_TOO_LONG,
                f"Message body is too long: at most {self.limits.message_body_bytes} bytes",
            )
        return body

    def _author(self, ctx: Context) -> str | None:
        author = self._text(ctx, "Author", self.limits.identity_chars)
        if ctx.identity is not None:
            if author is not None and author != ctx.identity:
                raise E.TwilioApiError(
                    403, E.FORBIDDEN, "Author must be the identity of the access token"
                )
            return ctx.identity
        return author

    def list_messages(self, ctx: Context, conversation: str) -> Result:
        conv = self._conversation(ctx, conversation)
        items = self.store.children("message", conv["sid"])
        return self._page(
            ctx,
            items,
            key="messages",
            list_path=f"{self._prefix(ctx)}/Conversations/{conv['sid']}/Messages",
            render=lambda r: self.render_message(ctx, r),
            kind="message",
            parent=conv["sid"],
            by_index=True,
            filters=("Order",),
        )

    def create_message(self, ctx: Context, conversation: str) -> Result:
        body = self._body(ctx)
        author = self._author(ctx) or "system"
        attributes = self._attributes(ctx, self.limits.message_attributes_bytes)
        media_sid = ctx.form.one("MediaSid")
        content_sid = ctx.form.one("ContentSid")
        if media_sid is not None and not is_sid(media_sid, "ME"):
            raise E.bad_request(f"Invalid MediaSid {media_sid!r}")
        if content_sid is not None and not is_sid(content_sid, "HX"):
            raise E.bad_request(f"Invalid ContentSid {content_sid!r}")
        if body is None and media_sid is None and content_sid is None:
            raise E.bad_request("Missing required parameter: one of Body, MediaSid or ContentSid")
        created = self._date(ctx, "DateCreated")
        updated = self._date(ctx, "DateUpdated")
        ctx.author = author
        with self.store.transaction():
            conv = self._conversation(ctx, conversation)
            participant = self.store.find("participant", conv["sid"], author)
            index = int(conv["_next_index"])
            conv["_next_index"] = index + 1
            self.store.update(conv["sid"], conv, alt=conv["unique_name"])
            now = utc_now()
            media = None
            if media_sid is not None:
                media = [
                    {
                        "sid": media_sid,
                        "size": 0,
                        "content_type": "application/octet-stream",
                        "filename": None,
                    }
                ]
            record: Record = {
                "account_sid": self.account_sid,
                "conversation_sid": conv["sid"],
                "sid": new_sid("IM"),
                "index": index,
                "author": author,
                "body": body,
                "media": media,
                "attributes": attributes,
                "participant_sid": participant["sid"] if participant else None,
                "date_created": created or now,
                "date_updated": updated or created or now,
                "delivery": None,
                "content_sid": content_sid,
            }
            self.store.insert("message", conv["sid"], record, ord=index)
        self._queue(ctx, "onMessageAdded", conv["sid"], **self._message_event_params(record))
        return 201, self.render_message(ctx, record)

    def fetch_message(self, ctx: Context, conversation: str, sid: str) -> Result:
        conv = self._conversation(ctx, conversation)
        return 200, self.render_message(ctx, self._message(ctx, conv, sid))

    def update_message(self, ctx: Context, conversation: str, sid: str) -> Result:
        body = self._body(ctx)
        author = self._text(ctx, "Author", self.limits.identity_chars)
        attributes = self._attributes(ctx, self.limits.message_attributes_bytes, None)
        created = self._date(ctx, "DateCreated")
        updated = self._date(ctx, "DateUpdated")
        with self.store.transaction():
            conv = self._conversation(ctx, conversation)
            record = self._message(ctx, conv, sid)
            if ctx.identity is not None and record["author"] != ctx.identity:
                raise E.TwilioApiError(403, E.FORBIDDEN, "Only the author may update a message")
            if author is not None and ctx.identity is None:
                record["author"] = author
                participant = self.store.find("participant", conv["sid"], author)
                record["participant_sid"] = participant["sid"] if participant else None
            if body is not None:
                record["body"] = body
            if attributes is not None:
                record["attributes"] = attributes
            if created is not None:
                record["date_created"] = created
            record["date_updated"] = updated or utc_now()
            self.store.update(record["sid"], record)
        ctx.author = record["author"]
        params = {**self._message_event_params(record), "DateUpdated": record["date_updated"]}
        self._queue(ctx, "onMessageUpdated", conv["sid"], **params)
        return 200, self.render_message(ctx, record)

    def delete_message(self, ctx: Context, conversation: str, sid: str) -> Result:
        conv = self._conversation(ctx, conversation)
        record = self._message(ctx, conv, sid)
        if ctx.identity is not None and record["author"] != ctx.identity:
            raise E.TwilioApiError(403, E.FORBIDDEN, "Only the author may delete a message")
        self.store.delete(record["sid"])
        ctx.author = record["author"]
        params = {**self._message_event_params(record), "DateRemoved": utc_now()}
        self._queue(ctx, "onMessageRemoved", conv["sid"], **params)
        return 204, None

    # --- users -----------------------------------------------------------------------------

    def _new_user(self, service: Record, identity: str) -> Record:
        now = utc_now()
        return {
            "sid": new_sid("US"),
            "account_sid": self.account_sid,
            "chat_service_sid": service["sid"],
            "role_sid": service["_roles"]["service_user"],
            "identity": identity,
            "friendly_name": None,
            "attributes": "{}",
            "is_online": None,
            "is_notifiable": None,
            "date_created": now,
            "date_updated": now,
        }

    @staticmethod
    def _user_event_params(record: Record) -> dict[str, Any]:
        return {
            "UserSid": record["sid"],
            "Identity": record["identity"],
            "FriendlyName": record["friendly_name"],
            "Attributes": record["attributes"],
            "RoleSid": record["role_sid"],
            "DateCreated": record["date_created"],
            "DateUpdated": record["date_updated"],
        }

    def render_user(self, ctx: Context, record: Record) -> dict[str, Any]:
        url = f"{CANONICAL_BASE}{self._prefix(ctx)}/Users/{record['sid']}"
        return {
            **self._public(record),
            "url": url,
            "links": {"user_conversations": f"{url}/Conversations"},
        }

    def list_users(self, ctx: Context) -> Result:
        service = self._service(ctx)
        items = self.store.children("user", service["sid"])
        return self._page(
            ctx,
            items,
            key="users",
            list_path=f"{self._prefix(ctx)}/Users",
            render=lambda r: self.render_user(ctx, r),
            kind="user",
            parent=service["sid"],
        )

    def create_user(self, ctx: Context) -> Result:
        identity = self._required(ctx, "Identity", self.limits.identity_chars)
        name = self._text(ctx, "FriendlyName", self.limits.friendly_name_chars)
        attributes = self._attributes(ctx, self.limits.user_attributes_bytes)
        role = self._role(ctx)
        with self.store.transaction():
            service = self._service(ctx)
            if self.store.find("user", service["sid"], identity) is not None:
                raise E.TwilioApiError(409, E.USER_EXISTS, f"User already exists: {identity}")
            record = self._new_user(service, identity)
            record.update(friendly_name=name, attributes=attributes)
            if role:
                record["role_sid"] = role
            self.store.insert("user", service["sid"], record, alt=identity)
        self._queue(ctx, "onUserAdded", None, **self._user_event_params(record))
        return 201, self.render_user(ctx, record)

    def fetch_user(self, ctx: Context, sid: str) -> Result:
        return 200, self.render_user(ctx, self._user(ctx, sid))

    def update_user(self, ctx: Context, sid: str) -> Result:
        name = self._text(ctx, "FriendlyName", self.limits.friendly_name_chars)
        attributes = self._attributes(ctx, self.limits.user_attributes_bytes, None)
        role = self._role(ctx)
        with self.store.transaction():
            record = self._user(ctx, sid)
            if name is not None:
                record["friendly_name"] = name
            if attributes is not None:
                record["attributes"] = attributes
            if role is not None:
                record["role_sid"] = role
            record["date_updated"] = utc_now()
            self.store.update(record["sid"], record, alt=record["identity"])
        self._queue(ctx, "onUserUpdated", None, **self._user_event_params(record))
        return 200, self.render_user(ctx, record)

    def delete_user(self, ctx: Context, sid: str) -> Result:
        record = self._user(ctx, sid)
        self.store.delete(record["sid"])
        return 204, None

    # --- conversation-scoped webhooks ------------------------------------------------------

    def render_webhook(self, ctx: Context, record: Record) -> dict[str, Any]:
        url = (
            f"{CANONICAL_BASE}{self._prefix(ctx)}/Conversations/{record['conversation_sid']}"
            f"/Webhooks/{record['sid']}"
        )
        return {**self._public(record), "url": url}

    def _webhook_configuration(
        self, ctx: Context, target: str, current: dict[str, Any]
    ) -> dict[str, Any]:
        config = dict(current)
        url = ctx.form.one("Configuration.Url")
        if url is not None:
            config["url"] = check_loopback_url(url)
        method = ctx.form.one("Configuration.Method")
        if method is not None:
            if method.upper() not in ("GET", "POST"):
                raise E.bad_request("Configuration.Method must be GET or POST")
            config["method"] = method.lower()
        if "Configuration.Filters" in ctx.form:
            filters = ctx.form.many("Configuration.Filters")
            unknown = [f for f in filters if f not in POST_EVENTS]
            if unknown:
                raise E.bad_request(f"Invalid Configuration.Filters value(s): {', '.join(unknown)}")
            config["filters"] = filters
        if "Configuration.Triggers" in ctx.form:
            config["triggers"] = ctx.form.many("Configuration.Triggers")
        flow = ctx.form.one("Configuration.FlowSid")
        if flow is not None:
            if not is_sid(flow, "FW"):
                raise E.bad_request(f"Invalid Configuration.FlowSid {flow!r}")
            config["flow_sid"] = flow
        replay = ctx.form.one("Configuration.ReplayAfter")
        if replay is not None:
            if not replay.isdigit():
                raise E.bad_request("Configuration.ReplayAfter must be an integer")
            config["replay_after"] = int(replay)
        if target in ("webhook", "trigger") and "url" not in config:
            raise E.bad_request("Missing required parameter Configuration.Url in the post body")
        if target == "studio" and "flow_sid" not in config:
            raise E.bad_request("Missing required parameter Configuration.FlowSid in the post body")
        config.setdefault("method", "post")
        return config

    def list_webhooks(self, ctx: Context, conversation: str) -> Result:
        conv = self._conversation(ctx, conversation)
        items = self.store.children("webhook", conv["sid"])
        return self._page(
            ctx,
            items,
            key="webhooks",
            list_path=f"{self._prefix(ctx)}/Conversations/{conv['sid']}/Webhooks",
            render=lambda r: self.render_webhook(ctx, r),
            kind="webhook",
            parent=conv["sid"],
            max_size=MAX_CONVERSATION_WEBHOOKS,
            default_size=MAX_CONVERSATION_WEBHOOKS,
        )

    def create_webhook(self, ctx: Context, conversation: str) -> Result:
        target = self._required(ctx, "Target")
        if target not in ("webhook", "trigger", "studio"):
            raise E.bad_request("Target must be webhook, trigger or studio")
        config = self._webhook_configuration(ctx, target, {})
        with self.store.transaction():
            conv = self._conversation(ctx, conversation)
            if self.store.count("webhook", conv["sid"]) >= MAX_CONVERSATION_WEBHOOKS:
                raise E.bad_request(
                    f"At most {MAX_CONVERSATION_WEBHOOKS} webhooks per conversation", code=50367
                )
            now = utc_now()
            record: Record = {
                "sid": new_sid("WH"),
                "account_sid": self.account_sid,
                "conversation_sid": conv["sid"],
                "target": target,
                "configuration": config,
                "date_created": now,
                "date_updated": now,
            }
            self.store.insert("webhook", conv["sid"], record)
        return 201, self.render_webhook(ctx, record)

    def _webhook(self, ctx: Context, conv: Record, sid: str) -> Record:
        record = self.store.get("webhook", sid, parent=conv["sid"])
        if record is None:
            raise E.not_found(ctx.path)
        return record

    def fetch_webhook(self, ctx: Context, conversation: str, sid: str) -> Result:
        conv = self._conversation(ctx, conversation)
        return 200, self.render_webhook(ctx, self._webhook(ctx, conv, sid))

    def update_webhook(self, ctx: Context, conversation: str, sid: str) -> Result:
        with self.store.transaction():
            conv = self._conversation(ctx, conversation)
            record = self._webhook(ctx, conv, sid)
            record["configuration"] = self._webhook_configuration(
                ctx, record["target"], record["configuration"]
            )
            record["date_updated"] = utc_now()
            self.store.update(record["sid"], record)
        return 200, self.render_webhook(ctx, record)

    def delete_webhook(self, ctx: Context, conversation: str, sid: str) -> Result:
        conv = self._conversation(ctx, conversation)
        record = self._webhook(ctx, conv, sid)
        self.store.delete(record["sid"])
        return 204, None
