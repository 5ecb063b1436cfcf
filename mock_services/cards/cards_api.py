"""Cards v5 handlers of the mock (sans-I/O: store + caller identity + parsed body → Reply).

Publishing validates the raw signed model with the package's own card parser (content snapshot
kept as received, version "5.0", identity, created_at, a usable Ed25519 key that is not of small
order) and the self signature, requires the card identity to be the JWT identity, appends the
service's ``virgil`` signature, and marks ``previous_card_id`` superseded (same identity, still
active). Search returns every non-revoked card of the identities asked (superseded ones too, as
Virgil does; clients link them); get returns any card, with ``X-Virgil-Is-Superseeded: true`` when
it is superseded or revoked.
"""

from __future__ import annotations

from typing import Any

from mock_services.cards import errors as codes
from mock_services.cards.common import Reply
from mock_services.cards.errors import ApiError
from mock_services.cards.store import CardRecord, CardsStore
from twilio_e2ee.cards.errors import MalformedCardError
from twilio_e2ee.cards.model import SIGNER_SELF, SIGNER_VIRGIL, Card, RawSignedModel, is_card_id
from twilio_e2ee.crypto.keys import PrivateKey
from twilio_e2ee.crypto.signatures import verify

__all__ = [
    "MAX_CARD_IDS",
    "MAX_SEARCH_IDENTITIES",
    "SUPERSEDED_HEADER",
    "get",
    "outdated",
    "publish",
    "revoke",
    "search",
]

SUPERSEDED_HEADER = "X-Virgil-Is-Superseeded"  # sic: Virgil's spelling
MAX_SEARCH_IDENTITIES = 50
MAX_CARD_IDS = 1000


def _card_id(value: object) -> str:
    if not is_card_id(value):
        raise ApiError(400, codes.BAD_CARD_ID, "card id must be 64 lowercase hex digits")
    assert isinstance(value, str)
    return value


def publish(store: CardsStore, caller: str, raw: Any, service_key: PrivateKey) -> Reply:
    if not isinstance(raw, dict):
        raise ApiError(400, codes.BAD_JSON, "request body must be a raw signed model object")
    try:
        model = RawSignedModel.from_json(raw)
    except MalformedCardError as exc:
        raise ApiError(400, codes.CARD_MALFORMED, f"raw card model is malformed: {exc}") from None
    try:
        card = Card.from_raw(model)
    except MalformedCardError as exc:
        raise ApiError(400, codes.CARD_CONTENT, f"card content is invalid: {exc}") from None
    if model.signature(SIGNER_VIRGIL) is not None:
        raise ApiError(400, codes.RESERVED_SIGNER, "the 'virgil' signature is the service's own")
    self_sig = model.signature(SIGNER_SELF)
    if self_sig is None:
        raise ApiError(400, codes.SELF_SIGNATURE, "the card has no self signature")
    signed = model.content_snapshot + (self_sig.snapshot or b"")
    if not verify(signed, self_sig.signature, card.public_key):
        raise ApiError(400, codes.SELF_SIGNATURE, "the self signature does not verify")
    if card.identity != caller:
        raise ApiError(
            403, codes.IDENTITY_MISMATCH, "card identity differs from the access token identity"
        )
    if store.get_card(card.id) is not None:
        raise ApiError(409, codes.CARD_EXISTS, "this card is already published")
    previous = card.previous_card_id
    if previous is not None:
        old = store.get_card(previous)
        if old is None or old.identity != caller:
            raise ApiError(400, codes.PREVIOUS_CARD, "previous card not found for this identity")
        if old.superseded or old.revoked:
            raise ApiError(400, codes.PREVIOUS_CARD, "previous card is already superseded")
    published = model.add_signature(SIGNER_VIRGIL, service_key)
    record = CardRecord(card.id, caller, published.to_json(), store.next_seq())
    store.insert_card(record, previous)
    return Reply(200, record.model)


def _string_list(raw: Any, field: str, limit: int) -> list[str]:
    if not isinstance(raw, dict):
        raise ApiError(400, codes.BAD_JSON, "request body must be a JSON object")
    items = raw.get(field)
    if not isinstance(items, list) or not items:
        raise ApiError(400, codes.BAD_LIST, f"'{field}' must be a non-empty list")
    if len(items) > limit:
        raise ApiError(400, codes.BAD_LIST, f"at most {limit} entries in '{field}'")
    if not all(isinstance(i, str) and i for i in items):
        raise ApiError(400, codes.BAD_LIST, f"'{field}' must hold non-empty strings")
    return list(dict.fromkeys(items))


def search(store: CardsStore, caller: str, raw: Any) -> Reply:
    identities = _string_list(raw, "identities", MAX_SEARCH_IDENTITIES)
    found = [c.model for i in identities for c in store.cards_of(i) if not c.revoked]
    return Reply(200, found)


def get(store: CardsStore, caller: str, card_id: str) -> Reply:
    record = store.get_card(_card_id(card_id))
    if record is None:
        raise ApiError(404, codes.CARD_NOT_FOUND, "card not found")
    headers = {SUPERSEDED_HEADER: "true"} if record.superseded or record.revoked else {}
    return Reply(200, record.model, headers)


def revoke(store: CardsStore, caller: str, card_id: str) -> Reply:
    record = store.get_card(_card_id(card_id))
    if record is None:
        raise ApiError(404, codes.CARD_NOT_FOUND, "card not found")
    if record.identity != caller:
        raise ApiError(403, codes.NOT_OWNER, "only the card's identity may revoke it")
    if not record.revoked:
        store.revoke_card(record.id)
    return Reply(200)


def outdated(store: CardsStore, caller: str, raw: Any) -> Reply:
    ids = [_card_id(i) for i in _string_list(raw, "card_ids", MAX_CARD_IDS)]
    stale = []
    for card_id in ids:
        record = store.get_card(card_id)
        if record is not None and (record.superseded or record.revoked):
            stale.append(card_id)
    return Reply(200, stale)
