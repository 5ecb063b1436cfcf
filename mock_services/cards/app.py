"""The mock Virgil Cards v5 + Keyknox v2 service: a Starlette app on one base URL.

Every request goes through the same steps: read the body (at most 64 KiB, else 413), check
``Authorization: Virgil <jwt>`` with :func:`twilio_e2ee.tokens.virgil_jwt.verify_virgil_jwt`
against the configured app key (401 otherwise), parse the JSON, run the handler under the store's
lock, answer Virgil-shaped errors (``{"code", "message"}``; codes in
:mod:`mock_services.cards.errors`), and record a :class:`~mock_services.journal.JournalEntry`.
A refused request never changes stored state: handlers validate everything before writing.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mock_services.cards import cards_api, keyknox
from mock_services.cards import errors as codes
from mock_services.cards.common import Reply
from mock_services.cards.errors import ApiError
from mock_services.cards.store import CardsStore, MemoryStore, SqliteStore
from mock_services.journal import Journal, JournalEntry
from twilio_e2ee.crypto.keys import PrivateKey, PublicKey, generate_key_pair, import_private_key
from twilio_e2ee.errors import E2EEError, TokenError, TokenExpiredError
from twilio_e2ee.http_body import (
    BodyTooLargeError,
    InvalidContentLengthError,
    MalformedJsonError,
    parse_json,
    read_body,
)
from twilio_e2ee.tokens.virgil_jwt import verify_virgil_jwt

__all__ = ["MAX_BODY_BYTES", "MockCardsService"]

MAX_BODY_BYTES = 64 * 1024
_SERVICE_KEY_SETTING = "service_private_key"
log = logging.getLogger(__name__)

Handler = Callable[[str, Any, Request], Reply]


def _parse_json(raw: bytes) -> tuple[bool, Any]:
    """(ok, value): empty body is (True, None); invalid JSON is (False, None)."""
    if not raw.strip():
        return True, None
    try:
        return True, parse_json(raw)
    except MalformedJsonError:
        return False, None


class MockCardsService:
    """Cards v5 + Keyknox v2 for one Virgil application, in memory or in SQLite (``db_path``).

    ``service_key`` signs published cards (the ``virgil`` signature); clients verify with
    ``service_public_key``. Without one, a key is generated, and with ``db_path`` it is kept in
    the database so cards stay verifiable across restarts.
    """

    def __init__(
        self,
        app_id: str,
        app_key_id: str,
        app_public_key: PublicKey,
        *,
        service_key: PrivateKey | None = None,
        db_path: str | Path | None = None,
        journal: Journal | None = None,
    ) -> None:
        if not isinstance(app_public_key, PublicKey):
            raise TypeError("app_public_key must be a twilio_e2ee.crypto.PublicKey")
        self.app_id = app_id
        self.app_key_id = app_key_id
        self.app_public_key = app_public_key
        self.store: CardsStore = SqliteStore(db_path) if db_path is not None else MemoryStore()
        self.service_key = self._service_key(service_key)
        self.journal = journal if journal is not None else Journal()
        self.app = Starlette(
            routes=self._routes(),
            exception_handlers={404: self._no_route, 405: self._no_route},
        )

    def _service_key(self, given: PrivateKey | None) -> PrivateKey:
        with self.store.lock:
            if given is not None:
                key = given
            else:
                stored = self.store.get_setting(_SERVICE_KEY_SETTING)
                key = (
                    generate_key_pair().private_key
                    if stored is None
                    else import_private_key(stored)
                )
            self.store.set_setting(_SERVICE_KEY_SETTING, base64.b64encode(key.der).decode())
        return key

    @property
    def service_public_key(self) -> PublicKey:
        """The key clients must trust for the ``virgil`` signature of cards from this mock."""
        return self.service_key.public_key

    def close(self) -> None:
        """Close the database (the app must not be served afterwards)."""
        self.store.close()

    # --- routing ---------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        store = self.store

        routes = [
            ("/card/v5", "cards", lambda who, body, req: cards_api.publish(
                store, who, body, self.service_key)),
            ("/card/v5/actions/search", "cards", lambda who, body, req: cards_api.search(
                store, who, body)),
            ("/card/v5/actions/updated", "cards", lambda who, body, req: cards_api.outdated(
                store, who, body)),
            ("/card/v5/actions/revoke/{card_id}", "cards", lambda who, body, req: cards_api.revoke(
                store, who, req.path_params["card_id"])),
            ("/keyknox/v2/push", "keyknox", lambda who, body, req: keyknox.push(
                store, who, body, _headers(req))),
            ("/keyknox/v2/pull", "keyknox", lambda who, body, req: keyknox.pull(
                store, who, body, _headers(req))),
            ("/keyknox/v2/keys", "keyknox", lambda who, body, req: keyknox.keys(
                store, who, body, _headers(req))),
            ("/keyknox/v2/reset", "keyknox", lambda who, body, req: keyknox.reset(
                store, who, body, _headers(req))),
        ]  # fmt: skip
        out = [
            Route(path, self._endpoint(service, handler), methods=["POST"])
            for path, service, handler in routes
        ]
        get: Handler = lambda who, body, req: cards_api.get(store, who, req.path_params["card_id"])  # noqa: E731
        out.append(Route("/card/v5/{card_id}", self._endpoint("cards", get), methods=["GET"]))
        return out

    async def _no_route(self, request: Request, exc: Exception) -> Response:
        status = int(getattr(exc, "status_code", 404))
        body = {
            "code": codes.UNKNOWN_ENDPOINT,
            "message": f"no endpoint {request.method} {request.url.path}",
        }
        self.journal.record(
            JournalEntry("cards", request.method, request.url.path, status, response=body)
        )
        return Response(json.dumps(body), status, media_type="application/json")

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            raise ApiError(401, codes.AUTH_HEADER, "Authorization header is missing")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "virgil" or not token.strip():
            raise ApiError(401, codes.AUTH_HEADER, "Authorization must be 'Virgil <jwt>'")
        try:
            jwt = verify_virgil_jwt(
                token.strip(),
                app_public_key=self.app_public_key,
                app_key_id=self.app_key_id,
                app_id=self.app_id,
            )
        except TokenExpiredError as exc:
            raise ApiError(401, codes.TOKEN_EXPIRED, f"access token expired: {exc}") from None
        except TokenError as exc:
            raise ApiError(401, codes.TOKEN_INVALID, f"access token is invalid: {exc}") from None
        return jwt.identity

    def _endpoint(self, service: str, handler: Handler) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            identity: str | None = None
            parsed: Any = None
            reply: Reply
            try:
                try:
                    raw = await read_body(request, MAX_BODY_BYTES)
                except BodyTooLargeError as exc:
                    raise ApiError(413, codes.TOO_LARGE, str(exc)) from None
                except InvalidContentLengthError as exc:
                    raise ApiError(400, codes.BAD_JSON, str(exc)) from None
                ok, parsed = _parse_json(raw)
                if not ok:
                    parsed = {"_unparsed": raw[:256].decode("utf-8", "replace")}
                identity = self._authenticate(request)
                if not ok:
                    raise ApiError(400, codes.BAD_JSON, "request body is not valid JSON")
                with self.store.lock:
                    reply = handler(identity, parsed, request)
            except ApiError as exc:
                reply = Reply(exc.status, exc.body())
            except E2EEError as exc:
                log.exception("mock cards: unexpected error")
                reply = Reply(500, {"code": codes.INTERNAL, "message": f"internal error: {exc}"})
            except Exception:
                log.exception("mock cards: unexpected error")
                reply = Reply(500, {"code": codes.INTERNAL, "message": "internal error"})
            self.journal.record(
                JournalEntry(
                    service=service,
                    method=request.method,
                    path=request.url.path,
                    status=reply.status,
                    identity=identity,
                    request=parsed,
                    response=reply.body,
                )
            )
            content = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
            headers = dict(reply.headers)
            media = "application/json" if reply.body is not None else None
            return Response(content, reply.status, headers=headers, media_type=media)

        return endpoint

    def __repr__(self) -> str:
        return f"MockCardsService(app_id={self.app_id!r})"


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}
