"""The Cards v5 protocol without I/O: request builders and response parsers.

Both :class:`~twilio_e2ee.cards.client.CardsClient` (sync) and ``AsyncCardsClient`` build their
requests here and hand the raw answers (status, headers, body bytes) back here, so the two clients
differ only in how bytes move. Every card from the network is parsed, passed through the
verifier, and subjected to Virgil CardManager's client-side checks.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from twilio_e2ee import json_text
from twilio_e2ee.cards.errors import (
    CardQueryError,
    CardResponseMismatchError,
    CardsAuthenticationError,
    CardsBadRequestError,
    CardsNotFoundError,
    CardsServiceError,
    CardsServiceUnavailableError,
    InvalidServiceResponseError,
)
from twilio_e2ee.cards.model import (
    Card,
    RawSignedModel,
    is_card_id,
    linked_card_list,
)
from twilio_e2ee.cards.verifier import CardVerifier
from twilio_e2ee.errors import ConfigurationError

__all__ = [
    "DEFAULT_API_URL",
    "MAX_IDENTITIES_PER_SEARCH",
    "MAX_IDS_PER_OUTDATED_CHECK",
    "NO_RETRY",
    "SUPERSEDED_HEADER",
    "TOKEN_EXPIRED_CODE",
    "CardsRequest",
    "CardsRetryPolicy",
    "backoff_delay",
    "find_published",
    "get_request",
    "is_uncertain",
    "normalize_identities",
    "outdated_request",
    "outdated_requests",
    "parse_get_response",
    "parse_outdated_response",
    "parse_publish_response",
    "parse_retry_after",
    "parse_search_response",
    "publish_request",
    "raise_for_error",
    "retry_delay",
    "revoke_request",
    "search_requests",
    "should_retry_with_fresh_token",
    "virgil_agent",
]

DEFAULT_API_URL = "https://api.virgilsecurity.com"
MAX_IDENTITIES_PER_SEARCH = 50
MAX_IDS_PER_OUTDATED_CHECK = 50  # chunked like search: small bodies, bounded server work
SUPERSEDED_HEADER = "X-Virgil-Is-Superseeded"  # sic, Virgil's spelling
TOKEN_EXPIRED_CODE = 20304
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


def virgil_agent() -> str:
    """The ``Virgil-Agent`` header: ``twilio_e2ee;python;<platform>;<version>``."""
    from twilio_e2ee import __version__

    py = f"Python{sys.version_info.major}.{sys.version_info.minor}"
    return f"twilio_e2ee;python;{py}/{platform.system().lower() or 'unknown'};{__version__}"


@dataclass(frozen=True)
class CardsRequest:
    """One HTTP request to the Cards service, minus the Authorization header.

    ``idempotent`` requests only read (search is a POST but a read), so they may be re-sent.
    """

    method: str
    path: str
    json: Any = None
    idempotent: bool = False


@dataclass(frozen=True)
class CardsRetryPolicy:
    """Retries of failed Cards requests: attempts in all, exponential backoff, a delay cap.

    ``Retry-After`` (429/503) is honoured up to ``max_delay``; otherwise attempt *n* waits
    ``base_delay * 2**(n-1)``.
    """

    max_attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be an integer >= 1")
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigurationError(f"{name} must be a number >= 0")


NO_RETRY = CardsRetryPolicy(max_attempts=1)


# --- request builders ---------------------------------------------------------------------------


def _card_id(card_id: object) -> str:
    if isinstance(card_id, str) and is_card_id(card_id.lower()):
        return card_id.lower()
    raise CardQueryError(f"not a card id (64 hex digits): {card_id!r}")


def publish_request(model: RawSignedModel) -> CardsRequest:
    if not isinstance(model, RawSignedModel):
        raise CardQueryError(f"publish: expected a RawSignedModel, got {type(model).__name__}")
    return CardsRequest("POST", "/card/v5", model.to_json())


def _items(values: str | Iterable[str], what: str) -> list[Any]:
    if isinstance(values, str):
        return [values]
    try:
        return list(values)
    except TypeError:
        raise CardQueryError(f"{what}: expected a str or an iterable of str") from None


def normalize_identities(identities: str | Iterable[str]) -> list[str]:
    """One identity or many → a de-duplicated list (order kept); empty or non-str is refused."""
    out: list[str] = []
    for item in _items(identities, "identities"):
        if not isinstance(item, str) or not item:
            raise CardQueryError(f"identities must be non-empty strings, got {item!r}")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise CardQueryError(f"identity {item!r} is not valid text") from None
        if item not in out:
            out.append(item)
    if not out:
        raise CardQueryError("search needs at least one identity")
    return out


def search_requests(identities: str | Iterable[str]) -> list[CardsRequest]:
    """One search request per chunk of 50 identities."""
    idents = normalize_identities(identities)
    return [
        CardsRequest(
            "POST",
            "/card/v5/actions/search",
            {"identities": idents[i : i + MAX_IDENTITIES_PER_SEARCH]},
            idempotent=True,
        )
        for i in range(0, len(idents), MAX_IDENTITIES_PER_SEARCH)
    ]


def get_request(card_id: str) -> CardsRequest:
    return CardsRequest("GET", f"/card/v5/{_card_id(card_id)}", idempotent=True)


def revoke_request(card_id: str) -> CardsRequest:
    return CardsRequest("POST", f"/card/v5/actions/revoke/{_card_id(card_id)}")


def _card_ids(card_ids: Iterable[str]) -> list[str]:
    ids = [_card_id(c) for c in _items(card_ids, "card ids")]
    if not ids:
        raise CardQueryError("outdated check needs at least one card id")
    return ids


def outdated_request(card_ids: Iterable[str]) -> CardsRequest:
    """One outdated check for all the ids (prefer :func:`outdated_requests`, which chunks)."""
    return CardsRequest(
        "POST", "/card/v5/actions/updated", {"card_ids": _card_ids(card_ids)}, idempotent=True
    )


def outdated_requests(card_ids: Iterable[str]) -> list[CardsRequest]:
    """One outdated check per chunk of 50 distinct ids (order kept)."""
    ids = list(dict.fromkeys(_card_ids(card_ids)))
    return [
        CardsRequest(
            "POST",
            "/card/v5/actions/updated",
            {"card_ids": ids[i : i + MAX_IDS_PER_OUTDATED_CHECK]},
            idempotent=True,
        )
        for i in range(0, len(ids), MAX_IDS_PER_OUTDATED_CHECK)
    ]


# --- retries ------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_uncertain(exc: CardsServiceError) -> bool:
    """A failure after which a write may have been applied (5xx, unreachable, lost answer).

    A 429 is a refusal: nothing was applied.
    """
    return isinstance(exc, CardsServiceUnavailableError) and exc.status != 429


def retry_delay(
    policy: CardsRetryPolicy, req: CardsRequest, attempt: int, exc: CardsServiceError
) -> float | None:
    """Seconds to wait before re-sending ``req`` after failed attempt ``attempt`` (1-based).

    None when it must not be re-sent as is: attempts used up, not a 429/5xx/transport failure,
    or a write whose failure is uncertain (the caller must look before writing again).
    """
    if attempt >= policy.max_attempts or not isinstance(exc, CardsServiceUnavailableError):
        return None
    if not req.idempotent and is_uncertain(exc):
        return None
    return backoff_delay(policy, attempt, exc)


def backoff_delay(policy: CardsRetryPolicy, attempt: int, exc: CardsServiceError) -> float | None:
    """Seconds before the next attempt (``Retry-After``, else exponential backoff, capped).

    None when the attempts are used up or the failure is not a 429/5xx/transport one. Writes use
    it directly after an uncertain failure: wait, look, and only then maybe re-send.
    """
    if attempt >= policy.max_attempts or not isinstance(exc, CardsServiceUnavailableError):
        return None
    wait = exc.retry_after
    if wait is None:
        wait = policy.base_delay * 2 ** (attempt - 1)
    return float(min(wait, policy.max_delay))


def find_published(sent: RawSignedModel, cards: Iterable[Card]) -> Card | None:
    """The card ``sent`` among searched cards (heads and their chains), if the service has it.

    Same content snapshot (hence id) and every signature that was sent, unchanged.
    """
    for head in cards:
        card: Card | None = head
        while card is not None:
            if card.id == sent.card_id:
                _check_same_card(sent, card.raw, "publish lookup")
                return card
            card = card.previous_card
    return None


# --- response handling --------------------------------------------------------------------------


def _json_body(body: bytes, what: str) -> Any:
    if len(body) > MAX_RESPONSE_BYTES:
        raise InvalidServiceResponseError(f"{what}: response too large")
    try:
        return json_text.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        raise InvalidServiceResponseError(f"{what}: response is not JSON") from None


def raise_for_error(
    status: int, body: bytes, reason: str = "", headers: Mapping[str, str] | None = None
) -> None:
    """Raise the typed CardsServiceError for a non-2xx answer (Virgil's {"code","message"}).

    A ``Retry-After`` header lands in the error's ``retry_after`` (seconds).
    """
    if 200 <= status < 300:
        return
    code: int | None = None
    message: str | None = None
    try:
        doc = json.loads(body) if body and len(body) < 65536 else None
    except (ValueError, RecursionError):
        doc = None
    if isinstance(doc, Mapping):
        raw_code = doc.get("code")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        if isinstance(doc.get("message"), str):
            message = doc["message"]
    text = f"Cards service answered {status}"
    if code is not None:
        text += f" (code {code})"
    text += f": {message or reason or 'no message'}"
    kwargs: dict[str, Any] = {"status": status, "code": code, "service_message": message}
    cls: type[CardsServiceError]
    if status in (401, 403):
        cls = CardsAuthenticationError
    elif status == 404:
        cls = CardsNotFoundError
    elif status == 429 or status >= 500:
        cls = CardsServiceUnavailableError
    elif 400 <= status < 500:
        cls = CardsBadRequestError
    else:
        cls = InvalidServiceResponseError
    error = cls(text, **kwargs)
    if headers is not None:
        error.retry_after = parse_retry_after(headers.get("Retry-After"))
    raise error


def should_retry_with_fresh_token(exc: CardsServiceError) -> bool:
    """An expired or refused token: retry once with a force-reloaded token."""
    return exc.code == TOKEN_EXPIRED_CODE or exc.status == 401


def _parse_model(item: Any, what: str) -> RawSignedModel:
    if not isinstance(item, Mapping):
        raise InvalidServiceResponseError(f"{what}: expected a card object")
    return RawSignedModel.from_json(item)


def _verified(model: RawSignedModel, verifier: CardVerifier, *, outdated: bool = False) -> Card:
    card = Card.from_raw(model, is_outdated=outdated)
    verifier.verify(card)
    return card


def parse_publish_response(sent: RawSignedModel, body: bytes, verifier: CardVerifier) -> Card:
    """The published card: same snapshot as sent, and it passes the verifier."""
    model = _parse_model(_json_body(body, "publish"), "publish")
    _check_same_card(sent, model, "publish")
    return _verified(model, verifier)


def _check_same_card(sent: RawSignedModel, model: RawSignedModel, what: str) -> None:
    if model.content_snapshot != sent.content_snapshot:
        raise CardResponseMismatchError(
            f"{what}: the service returned a card with a different content snapshot"
        )
    for sig in sent.signatures:
        got = model.signature(sig.signer)
        if got is None or got.signature != sig.signature or got.snapshot != sig.snapshot:
            raise CardResponseMismatchError(
                f"{what}: the service dropped or changed the {sig.signer!r} signature"
            )


def parse_search_response(
    identities: Sequence[str], body: bytes, verifier: CardVerifier
) -> list[Card]:
    """Verified cards of the asked identities only, as linked chains (heads first)."""
    doc = _json_body(body, "search")
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise InvalidServiceResponseError("search: expected a JSON array of cards")
    asked = set(identities)
    cards: list[Card] = []
    for item in doc:
        card = _verified(_parse_model(item, "search"), verifier)
        if card.identity not in asked:
            raise CardResponseMismatchError(
                f"search: the service returned a card of {card.identity!r}, which was not asked for"
            )
        cards.append(card)
    return linked_card_list(cards)


def parse_get_response(
    card_id: str, headers: Mapping[str, str], body: bytes, verifier: CardVerifier
) -> Card:
    """The card asked for (its computed id must match), outdated if the service says superseded."""
    model = _parse_model(_json_body(body, "get"), "get")
    if model.card_id != _card_id(card_id):
        raise CardResponseMismatchError(
            f"get: asked for card {card_id}, the service returned card {model.card_id}"
        )
    superseded = str(headers.get(SUPERSEDED_HEADER, "")).strip().lower() == "true"
    return _verified(model, verifier, outdated=superseded)


def parse_outdated_response(card_ids: Sequence[str], body: bytes) -> list[str]:
    """Ids, among those asked, that the service reports as outdated."""
    doc = _json_body(body, "outdated")
    if doc is None:
        return []
    if not isinstance(doc, list) or not all(isinstance(x, str) for x in doc):
        raise InvalidServiceResponseError("outdated: expected a JSON array of card ids")
    asked = {c.lower() for c in card_ids}
    got = [x.lower() for x in doc]
    stray = [x for x in got if x not in asked]
    if stray:
        raise CardResponseMismatchError(f"outdated: the service named ids not asked for: {stray}")
    return got
