"""Cards v5 HTTP clients over httpx: :class:`CardsClient` (sync) and :class:`AsyncCardsClient`.

Both are thin I/O layers over :mod:`twilio_e2ee.cards.protocol`. Requests carry
``Authorization: Virgil <jwt>`` (from a caching token provider) and ``Virgil-Agent``. An
expired-token answer (code 20304) or a 401 is retried once with a force-reloaded token. Every
card from the network goes through the verifier; by default that is Virgil's production service
key, so pointing a client at another service (e.g. the bundled mock) needs that service's key —
verification is never switched off because of the URL.

Retries (:class:`~twilio_e2ee.cards.protocol.CardsRetryPolicy`): reads (search, get, outdated)
are re-sent after a 429, a 5xx or a transport error, waiting ``Retry-After`` or an exponential
backoff. Writes are re-sent as they are only after a 429 (refused, nothing applied). After an
uncertain failure (5xx, lost answer) publish first searches the identity's cards for the same
snapshot and returns it if the service has it; revoke first fetches the card and stops if it is
already outdated; only then is the write sent again.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx

from twilio_e2ee.cards import protocol as p
from twilio_e2ee.cards.errors import CardsServiceError, CardsServiceUnavailableError
from twilio_e2ee.cards.model import Card, RawSignedModel, create_raw_card
from twilio_e2ee.cards.protocol import CardsRetryPolicy
from twilio_e2ee.cards.verifier import CardVerifier
from twilio_e2ee.crypto.keys import PrivateKey, PublicKey
from twilio_e2ee.errors import ConfigurationError
from twilio_e2ee.tokens.providers import (
    AsyncCachingJwtProvider,
    AsyncTokenProvider,
    CachingJwtProvider,
    TokenProvider,
    token_identity,
)

__all__ = ["DEFAULT_API_URL", "AsyncCardsClient", "CardsClient"]

DEFAULT_API_URL = p.DEFAULT_API_URL
DEFAULT_TIMEOUT = 30.0


def _make_verifier(
    verifier: CardVerifier | None, service_public_key: PublicKey | bytes | str | None
) -> CardVerifier:
    if verifier is not None:
        if not isinstance(verifier, CardVerifier):
            raise ConfigurationError(
                f"verifier must be a CardVerifier, got {type(verifier).__name__}"
            )
        return verifier
    return CardVerifier(service_public_key)


def _sync_provider(token: object) -> TokenProvider:
    if isinstance(token, AsyncCachingJwtProvider) or inspect.iscoroutinefunction(
        getattr(token, "get_token", None)
    ):
        raise ConfigurationError("CardsClient needs a synchronous token provider or callback")
    if callable(getattr(token, "get_token", None)):
        return token  # type: ignore[return-value]
    if callable(token):
        return CachingJwtProvider(token)  # type: ignore[arg-type]
    raise ConfigurationError("token must be a token provider or a zero-argument callable")


def _async_provider(token: object) -> AsyncTokenProvider:
    if inspect.iscoroutinefunction(getattr(token, "get_token", None)):
        return token  # type: ignore[return-value]
    if isinstance(token, CachingJwtProvider):
        raise ConfigurationError(
            "AsyncCardsClient needs an async token provider (AsyncCachingJwtProvider) or callback"
        )
    if callable(token):
        return AsyncCachingJwtProvider(token)  # type: ignore[arg-type]
    raise ConfigurationError("token must be a token provider or a zero-argument callable")


def _retry_policy(policy: object) -> CardsRetryPolicy:
    if policy is None:
        return CardsRetryPolicy()
    if not isinstance(policy, CardsRetryPolicy):
        raise ConfigurationError(
            f"retry_policy must be a CardsRetryPolicy, got {type(policy).__name__}"
        )
    return policy


def _check_sleep(sleep: object) -> None:
    if not callable(sleep):
        raise ConfigurationError("sleep must be a callable taking seconds")


def _identity(model: RawSignedModel) -> str:
    return Card.from_raw(model).identity


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Virgil {token}",
        "Virgil-Agent": p.virgil_agent(),
        "Accept": "application/json",
    }


def _transport_error(exc: Exception, req: p.CardsRequest) -> CardsServiceUnavailableError:
    return CardsServiceUnavailableError(
        f"Cards service unreachable ({req.method} {req.path}): {type(exc).__name__}: {exc}"
    )


class _Base:
    def __init__(
        self,
        base_url: str,
        verifier: CardVerifier | None,
        service_public_key: PublicKey | bytes | str | None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.verifier = _make_verifier(verifier, service_public_key)

    def _url(self, req: p.CardsRequest) -> str:
        return self.base_url + req.path


class CardsClient(_Base):
    """Synchronous Cards v5 client.

    ``token`` is a :class:`CachingJwtProvider` or a zero-argument callable returning a Virgil JWT
    (wrapped in one). Give ``service_public_key`` (or a ``verifier``) for a non-Virgil service.
    """

    def __init__(
        self,
        token: TokenProvider | Callable[[], str],
        *,
        base_url: str = DEFAULT_API_URL,
        verifier: CardVerifier | None = None,
        service_public_key: PublicKey | bytes | str | None = None,
        http_client: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: CardsRetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(base_url, verifier, service_public_key)
        self.tokens = _sync_provider(token)
        self.retry_policy = _retry_policy(retry_policy)
        _check_sleep(sleep)
        self._sleep = sleep
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=timeout)

    def _send_once(self, req: p.CardsRequest, token: str) -> httpx.Response:
        try:
            resp = self._http.request(
                req.method, self._url(req), json=req.json, headers=_headers(token)
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _transport_error(exc, req) from exc
        p.raise_for_error(resp.status_code, resp.content, resp.reason_phrase, resp.headers)
        return resp

    def _send_authed(self, req: p.CardsRequest) -> httpx.Response:
        try:
            return self._send_once(req, self.tokens.get_token())
        except CardsServiceError as exc:
            if not p.should_retry_with_fresh_token(exc):
                raise
        return self._send_once(req, self.tokens.get_token(force_reload=True))

    def _send(self, req: p.CardsRequest) -> httpx.Response:
        attempt = 1
        while True:
            try:
                return self._send_authed(req)
            except CardsServiceError as exc:
                delay = p.retry_delay(self.retry_policy, req, attempt, exc)
                if delay is None:
                    raise
            self._sleep(delay)
            attempt += 1

    def _after_uncertain(self, exc: CardsServiceError, attempt: int) -> None:
        """Wait before looking up an uncertain write, or re-raise when that must not happen."""
        delay = p.backoff_delay(self.retry_policy, attempt, exc) if p.is_uncertain(exc) else None
        if delay is None:
            raise exc
        self._sleep(delay)

    def publish_raw_card(self, model: RawSignedModel) -> Card:
        """Publish a self-signed raw card; returns it verified, with the service signature."""
        req = p.publish_request(model)
        attempt = 1
        while True:
            try:
                resp = self._send(req)
            except CardsServiceError as exc:
                self._after_uncertain(exc, attempt)
                found = p.find_published(model, self.search_cards(_identity(model)))
                if found is not None:
                    return found
                attempt += 1
                continue
            return p.parse_publish_response(model, resp.content, self.verifier)

    def publish_card(
        self,
        private_key: PrivateKey,
        *,
        previous_card_id: str | None = None,
        extra_fields: Mapping[str, Any] | None = None,
    ) -> Card:
        """Create, self-sign and publish a card for the token's identity."""
        identity = token_identity(self.tokens.get_token())
        model = create_raw_card(
            private_key, identity, previous_card_id=previous_card_id, extra_fields=extra_fields
        )
        return self.publish_raw_card(model)

    def search_cards(self, identities: str | Iterable[str]) -> list[Card]:
        """Verified cards of the identities (chunks of 50), heads with their chains attached."""
        cards: list[Card] = []
        for req in p.search_requests(identities):
            asked = req.json["identities"]
            cards.extend(p.parse_search_response(asked, self._send(req).content, self.verifier))
        return cards

    def get_card(self, card_id: str) -> Card:
        """The verified card with that id (``is_outdated`` if superseded or revoked)."""
        req = p.get_request(card_id)
        resp = self._send(req)
        return p.parse_get_response(card_id, resp.headers, resp.content, self.verifier)

    def revoke_card(self, card_id: str) -> None:
        """Revoke one of the token identity's cards (done once the card is outdated)."""
        req = p.revoke_request(card_id)
        attempt = 1
        while True:
            try:
                self._send(req)
                return
            except CardsServiceError as exc:
                self._after_uncertain(exc, attempt)
            if self.get_card(card_id).is_outdated:
                return
            attempt += 1

    def get_outdated(self, card_ids: Iterable[str]) -> list[str]:
        """Which of ``card_ids`` the service reports as outdated (chunks of 50 ids)."""
        outdated: list[str] = []
        for req in p.outdated_requests(card_ids):
            resp = self._send(req)
            outdated.extend(p.parse_outdated_response(req.json["card_ids"], resp.content))
        return outdated

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> CardsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCardsClient(_Base):
    """Asynchronous Cards v5 client (same API as :class:`CardsClient`, awaitable).

    ``token`` is an :class:`AsyncCachingJwtProvider` or a zero-argument callable returning a JWT
    or an awaitable of one.
    """

    def __init__(
        self,
        token: AsyncTokenProvider | Callable[[], Awaitable[str] | str],
        *,
        base_url: str = DEFAULT_API_URL,
        verifier: CardVerifier | None = None,
        service_public_key: PublicKey | bytes | str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: CardsRetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(base_url, verifier, service_public_key)
        self.tokens = _async_provider(token)
        self.retry_policy = _retry_policy(retry_policy)
        _check_sleep(sleep)
        self._sleep = sleep
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)

    async def _send_once(self, req: p.CardsRequest, token: str) -> httpx.Response:
        try:
            resp = await self._http.request(
                req.method, self._url(req), json=req.json, headers=_headers(token)
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _transport_error(exc, req) from exc
        p.raise_for_error(resp.status_code, resp.content, resp.reason_phrase, resp.headers)
        return resp

    async def _send_authed(self, req: p.CardsRequest) -> httpx.Response:
        try:
            return await self._send_once(req, await self.tokens.get_token())
        except CardsServiceError as exc:
            if not p.should_retry_with_fresh_token(exc):
                raise
        return await self._send_once(req, await self.tokens.get_token(force_reload=True))

    async def _send(self, req: p.CardsRequest) -> httpx.Response:
        attempt = 1
        while True:
            try:
                return await self._send_authed(req)
            except CardsServiceError as exc:
                delay = p.retry_delay(self.retry_policy, req, attempt, exc)
                if delay is None:
                    raise
            await self._sleep(delay)
            attempt += 1

    async def _after_uncertain(self, exc: CardsServiceError, attempt: int) -> None:
        delay = p.backoff_delay(self.retry_policy, attempt, exc) if p.is_uncertain(exc) else None
        if delay is None:
            raise exc
        await self._sleep(delay)

    async def publish_raw_card(self, model: RawSignedModel) -> Card:
        """Publish a self-signed raw card; returns it verified, with the service signature."""
        req = p.publish_request(model)
        attempt = 1
        while True:
            try:
                resp = await self._send(req)
            except CardsServiceError as exc:
                await self._after_uncertain(exc, attempt)
                cards = await self.search_cards(_identity(model))
                found = p.find_published(model, cards)
                if found is not None:
                    return found
                attempt += 1
                continue
            return p.parse_publish_response(model, resp.content, self.verifier)

    async def publish_card(
        self,
        private_key: PrivateKey,
        *,
        previous_card_id: str | None = None,
        extra_fields: Mapping[str, Any] | None = None,
    ) -> Card:
        """Create, self-sign and publish a card for the token's identity."""
        identity = token_identity(await self.tokens.get_token())
        model = create_raw_card(
            private_key, identity, previous_card_id=previous_card_id, extra_fields=extra_fields
        )
        return await self.publish_raw_card(model)

    async def search_cards(self, identities: str | Iterable[str]) -> list[Card]:
        """Verified cards of the identities (chunks of 50), heads with their chains attached."""
        cards: list[Card] = []
        for req in p.search_requests(identities):
            asked = req.json["identities"]
            resp = await self._send(req)
            cards.extend(p.parse_search_response(asked, resp.content, self.verifier))
        return cards

    async def get_card(self, card_id: str) -> Card:
        """The verified card with that id (``is_outdated`` if superseded or revoked)."""
        req = p.get_request(card_id)
        resp = await self._send(req)
        return p.parse_get_response(card_id, resp.headers, resp.content, self.verifier)

    async def revoke_card(self, card_id: str) -> None:
        """Revoke one of the token identity's cards (done once the card is outdated)."""
        req = p.revoke_request(card_id)
        attempt = 1
        while True:
            try:
                await self._send(req)
                return
            except CardsServiceError as exc:
                await self._after_uncertain(exc, attempt)
            if (await self.get_card(card_id)).is_outdated:
                return
            attempt += 1

    async def get_outdated(self, card_ids: Iterable[str]) -> list[str]:
        """Which of ``card_ids`` the service reports as outdated (chunks of 50 ids)."""
        outdated: list[str] = []
        for req in p.outdated_requests(card_ids):
            resp = await self._send(req)
            outdated.extend(p.parse_outdated_response(req.json["card_ids"], resp.content))
        return outdated

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncCardsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
