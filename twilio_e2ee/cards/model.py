"""Virgil Cards v5: the raw signed model, the parsed :class:`Card`, chains and card ids (sans-I/O).

A raw signed model is ``{"content_snapshot": b64, "signatures": [{"signer", "signature",
"snapshot"?}]}``. The content snapshot is kept as the *exact bytes received*: the card id and every
signature cover those bytes, and SDKs differ in key order, so it is never re-serialised.

* card id = hex(SHA-512(content_snapshot)[:32])
* signed data of a signature = content_snapshot ‖ signature snapshot (when present)
* string form = base64(JSON of the model)
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from twilio_e2ee import json_text
from twilio_e2ee.cards.errors import CardNotActiveError, MalformedCardError
from twilio_e2ee.crypto.keys import PrivateKey, PublicKey, import_public_key
from twilio_e2ee.crypto.signatures import sign
from twilio_e2ee.errors import E2EEError

__all__ = [
    "CARD_VERSION",
    "MAX_MODEL_SIZE",
    "SIGNER_SELF",
    "SIGNER_VIRGIL",
    "Card",
    "RawSignature",
    "RawSignedModel",
    "card_active_at",
    "card_id_of",
    "cards_by_identity",
    "create_raw_card",
    "import_card",
    "is_card_id",
    "linked_card_list",
    "parse_card",
]

CARD_VERSION = "5.0"
SIGNER_SELF = "self"
SIGNER_VIRGIL = "virgil"
MAX_MODEL_SIZE = 64 * 1024  # bytes of JSON / base64 text; real cards are < 1 KiB
_CARD_ID_RE = re.compile(r"^[0-9a-f]{64}$")


def card_id_of(content_snapshot: bytes) -> str:
    """Virgil's card id: hex of the first 32 bytes of SHA-512 of the content snapshot."""
    return hashlib.sha512(content_snapshot).digest()[:32].hex()


def is_card_id(value: object) -> bool:
    """True for a well-formed card id (64 lowercase hex digits)."""
    return isinstance(value, str) and _CARD_ID_RE.fullmatch(value) is not None


def _b64decode(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedCardError(f"{what}: expected a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCardError(f"{what}: not valid base64") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # Parsers disagree on duplicates (first vs last wins): refuse the ambiguity.
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json_loads(data: str | bytes, what: str) -> Any:
    try:
        return json_text.loads(data, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError) as exc:
        # UnicodeError is a ValueError (also lone surrogates); RecursionError on absurd nesting.
        raise MalformedCardError(f"{what}: not valid JSON ({str(exc)[:80]})") from None


def _compact_json(obj: Mapping[str, Any], what: str) -> bytes:
    """JSON as JavaScript's JSON.stringify writes it: insertion order, no spaces, raw UTF-8."""
    if not isinstance(obj, Mapping):
        raise MalformedCardError(f"{what} must be a mapping, got {type(obj).__name__}")
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise MalformedCardError(f"{what} cannot be written as JSON: {exc}") from None


@dataclass(frozen=True)
class RawSignature:
    """One signature of a raw signed model; ``snapshot`` holds extra signed fields (raw JSON)."""

    signer: str
    signature: bytes
    snapshot: bytes | None = None

    def to_json(self) -> dict[str, str]:
        out = {"signer": self.signer, "signature": _b64(self.signature)}
        if self.snapshot is not None:
            out["snapshot"] = _b64(self.snapshot)
        return out

    @property
    def extra_fields(self) -> dict[str, Any]:
        """The signature snapshot parsed as a JSON object ({} when absent)."""
        if self.snapshot is None:
            return {}
        parsed = _json_loads(self.snapshot, f"signature snapshot of {self.signer!r}")
        if not isinstance(parsed, dict):
            raise MalformedCardError(f"signature snapshot of {self.signer!r} is not a JSON object")
        return parsed


@dataclass(frozen=True)
class RawSignedModel:
    """Virgil's raw signed model: the exact content snapshot bytes and the signatures."""

    content_snapshot: bytes
    signatures: tuple[RawSignature, ...] = ()

    @property
    def card_id(self) -> str:
        return card_id_of(self.content_snapshot)

    def signature(self, signer: str) -> RawSignature | None:
        """The signature of ``signer``, or None."""
        for sig in self.signatures:
            if sig.signer == signer:
                return sig
        return None

    def with_signature(self, signature: RawSignature) -> RawSignedModel:
        """A copy with one more signature (a signer may sign only once)."""
        if self.signature(signature.signer) is not None:
            raise MalformedCardError(f"card is already signed by {signature.signer!r}")
        return RawSignedModel(self.content_snapshot, (*self.signatures, signature))

    def add_signature(
        self, signer: str, private_key: PrivateKey, extra_fields: Mapping[str, Any] | None = None
    ) -> RawSignedModel:
        """Sign content_snapshot (‖ extra-fields snapshot) and return the model with that signature.

        Like Virgil's ModelSigner: the extra fields are written as compact JSON and signed with
        the content snapshot.
        """
        if not isinstance(signer, str) or not signer:
            raise MalformedCardError("signer must be a non-empty string")
        snapshot = _compact_json(extra_fields, "extra_fields") if extra_fields else None
        data = self.content_snapshot + (snapshot or b"")
        return self.with_signature(RawSignature(signer, sign(data, private_key), snapshot))

    # --- export --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON object sent to and received from the Cards service."""
        return {
            "content_snapshot": _b64(self.content_snapshot),
            "signatures": [s.to_json() for s in self.signatures],
        }

    def to_json_str(self) -> str:
        """Compact JSON text (keys sorted, as Virgil's exported strings are)."""
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True)

    def to_string(self) -> str:
        """Virgil's string form: base64 of the JSON text."""
        return _b64(self.to_json_str().encode("ascii"))

    # --- import --------------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> RawSignedModel:
        """Parse the JSON object (or JSON text) of a raw signed model."""
        if isinstance(data, (str, bytes, bytearray)):
            if len(data) > MAX_MODEL_SIZE:
                raise MalformedCardError(f"raw card larger than {MAX_MODEL_SIZE} bytes")
            data = _json_loads(bytes(data) if isinstance(data, bytearray) else data, "raw card")
        if not isinstance(data, Mapping):
            raise MalformedCardError(f"raw card: expected a JSON object, got {type(data).__name__}")
        snapshot = _b64decode(data.get("content_snapshot"), "content_snapshot")
        if not snapshot:
            raise MalformedCardError("content_snapshot is empty")
        raw_sigs = data.get("signatures", [])
        if raw_sigs is None:
            raw_sigs = []
        if not isinstance(raw_sigs, list):
            raise MalformedCardError("signatures: expected a list")
        sigs: list[RawSignature] = []
        seen: set[str] = set()
        for item in raw_sigs:
            if not isinstance(item, Mapping):
                raise MalformedCardError("signature entry: expected a JSON object")
            signer = item.get("signer")
            if not isinstance(signer, str) or not signer:
                raise MalformedCardError("signature entry: missing signer")
            if signer in seen:
                raise MalformedCardError(f"signer {signer!r} appears twice")
            seen.add(signer)
            sig = _b64decode(item.get("signature"), f"signature of {signer!r}")
            snap_b64 = item.get("snapshot")
            snap = None if snap_b64 is None else _b64decode(snap_b64, f"snapshot of {signer!r}")
            sigs.append(RawSignature(signer, sig, snap))
        return cls(snapshot, tuple(sigs))

    @classmethod
    def from_string(cls, data: str | bytes) -> RawSignedModel:
        """Parse Virgil's string form (base64 of the JSON text)."""
        if isinstance(data, (bytes, bytearray)):
            try:
                data = bytes(data).decode("ascii")
            except UnicodeDecodeError:
                raise MalformedCardError("raw card string: not ASCII base64") from None
        if not isinstance(data, str):
            raise MalformedCardError(f"raw card string: expected str, got {type(data).__name__}")
        if len(data) > MAX_MODEL_SIZE * 2:
            raise MalformedCardError("raw card string too large")
        return cls.from_json(_b64decode(data.strip(), "raw card string"))


@dataclass(frozen=True, eq=False)
class Card:
    """A parsed Virgil v5 card.

    ``previous_card`` and ``is_outdated`` are filled by :func:`linked_card_list` (from a search)
    or from the service's superseded header (from a get), as in Virgil's SDKs.
    """

    id: str
    identity: str
    public_key: PublicKey
    version: str
    created_at: int
    previous_card_id: str | None
    raw: RawSignedModel = field(repr=False)
    is_outdated: bool = False
    previous_card: Card | None = field(default=None, repr=False)

    @property
    def content_snapshot(self) -> bytes:
        return self.raw.content_snapshot

    @property
    def signatures(self) -> tuple[RawSignature, ...]:
        return self.raw.signatures

    @property
    def created(self) -> datetime:
        """``created_at`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.created_at, UTC)

    @classmethod
    def from_raw(cls, model: RawSignedModel, *, is_outdated: bool = False) -> Card:
        """Parse the content snapshot of a raw signed model (no signature checks here)."""
        content = _json_loads(model.content_snapshot, "content_snapshot")
        if not isinstance(content, dict):
            raise MalformedCardError("content_snapshot is not a JSON object")
        identity = content.get("identity")
        if not isinstance(identity, str) or not identity:
            raise MalformedCardError("card identity missing or not a string")
        version = content.get("version")
        if version != CARD_VERSION:
            raise MalformedCardError(f"unsupported card version {version!r} (expected '5.0')")
        created_at = content.get("created_at")
        if type(created_at) is not int or created_at < 0:
            raise MalformedCardError("card created_at missing or not a non-negative integer")
        previous = content.get("previous_card_id")
        if previous is not None and not is_card_id(previous):
            raise MalformedCardError("previous_card_id is not a 64-digit hex card id")
        pk_b64 = content.get("public_key")
        if not isinstance(pk_b64, str):
            raise MalformedCardError("card public_key missing or not a string")
        try:
            public_key = import_public_key(_b64decode(pk_b64, "public_key"))
        except MalformedCardError:
            raise
        except E2EEError as exc:
            raise MalformedCardError(f"card public_key unusable: {exc}") from None
        for sig in model.signatures:
            sig.extra_fields  # noqa: B018 - validates every signature snapshot is a JSON object
        return cls(
            id=model.card_id,
            identity=identity,
            public_key=public_key,
            version=version,
            created_at=created_at,
            previous_card_id=previous,
            raw=model,
            is_outdated=is_outdated,
        )

    def export(self) -> str:
        """Virgil's base64 string form of the raw model."""
        return self.raw.to_string()

    def chain(self) -> list[Card]:
        """This card then its attached predecessors, newest first."""
        out: list[Card] = []
        card: Card | None = self
        while card is not None:
            out.append(card)
            card = card.previous_card
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Card) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def parse_card(model: RawSignedModel, *, is_outdated: bool = False) -> Card:
    """Parse a raw signed model into a :class:`Card` (verification is the verifier's job)."""
    return Card.from_raw(model, is_outdated=is_outdated)


def import_card(data: Mapping[str, Any] | str | bytes | RawSignedModel) -> Card:
    """Import a card from a raw model, its JSON object or text, or Virgil's base64 string form."""
    if isinstance(data, RawSignedModel):
        return Card.from_raw(data)
    if isinstance(data, (str, bytes, bytearray)):
        text = data if isinstance(data, str) else bytes(data).decode("latin-1")
        stripped = text.strip()
        if stripped.startswith("{"):
            model = RawSignedModel.from_json(data)
        else:
            model = RawSignedModel.from_string(stripped)
        return Card.from_raw(model)
    return Card.from_raw(RawSignedModel.from_json(data))


def create_raw_card(
    private_key: PrivateKey,
    identity: str,
    *,
    previous_card_id: str | None = None,
    created_at: int | None = None,
    extra_fields: Mapping[str, Any] | None = None,
) -> RawSignedModel:
    """Create and self-sign a card model for a key pair, as Virgil's CardManager.generateRawCard.

    The snapshot is written compactly, as the JS SDK does:
    ``{"created_at","identity","public_key","version"[,"previous_card_id"]}``.
    """
    if not isinstance(private_key, PrivateKey):
        raise MalformedCardError(f"expected a PrivateKey, got {type(private_key).__name__}")
    if not isinstance(identity, str) or not identity:
        raise MalformedCardError("identity must be a non-empty string")
    if previous_card_id is not None and not is_card_id(previous_card_id):
        raise MalformedCardError("previous_card_id must be a 64-digit lowercase hex card id")
    when = int(time.time()) if created_at is None else created_at
    if type(when) is not int or when < 0:
        raise MalformedCardError("created_at must be a non-negative integer (Unix seconds)")
    content: dict[str, Any] = {
        "created_at": when,
        "identity": identity,
        "public_key": _b64(private_key.public_key.der),
        "version": CARD_VERSION,
    }
    if previous_card_id is not None:
        content["previous_card_id"] = previous_card_id
    model = RawSignedModel(_compact_json(content, "card content"))
    return model.add_signature(SIGNER_SELF, private_key, extra_fields)


def linked_card_list(cards: Iterable[Card]) -> list[Card]:
    """Heads of previous-card chains, predecessors attached (Virgil's linkedCardList).

    A card named as ``previous_card_id`` by another card *of the same identity* becomes that
    card's ``previous_card`` and is marked outdated; only the heads are returned, in input order.
    (Virgil's SDK links across identities too; here a card never supersedes another user's.)
    Input cards are not modified: copies are returned.
    """
    by_id: dict[str, Card] = {}
    for card in cards:
        by_id.setdefault(card.id, card)
    successor_of: dict[str, str] = {}
    for card in by_id.values():
        prev = card.previous_card_id
        if prev is None or prev not in by_id or prev in successor_of:
            continue
        if by_id[prev].identity != card.identity:
            continue
        successor_of[prev] = card.id

    built: dict[str, Card] = {}

    def build(card_id: str, visiting: frozenset[str]) -> Card:
        if card_id in built:
            return built[card_id]
        card = by_id[card_id]
        prev = card.previous_card_id
        prev_card = None
        if prev is not None and successor_of.get(prev) == card_id and prev not in visiting:
            prev_card = build(prev, visiting | {card_id})
        outdated = card.is_outdated or card_id in successor_of
        result = dataclasses.replace(card, previous_card=prev_card, is_outdated=outdated)
        built[card_id] = result
        return result

    return [build(cid, frozenset()) for cid in by_id if cid not in successor_of]


def _as_timestamp(moment: datetime | float | int) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise CardNotActiveError("moment must be timezone-aware (e.g. datetime.now(UTC))")
        return moment.timestamp()
    if isinstance(moment, (int, float)) and not isinstance(moment, bool) and math.isfinite(moment):
        return float(moment)
    raise CardNotActiveError(f"moment must be a datetime or finite Unix seconds, got {moment!r}")


def card_active_at(card: Card, moment: datetime | float | int) -> Card:
    """The card of the chain that was active at ``moment`` (E3Kit's getCardActiveAtMoment).

    Walks ``previous_card`` links from ``card`` while the card was created after ``moment``.
    Raises CardNotActiveError when even the oldest known card is newer than ``moment``.
    """
    when = _as_timestamp(moment)
    current: Card | None = card
    while current is not None and current.created_at > when:
        current = current.previous_card
    if current is None:
        raise CardNotActiveError(
            f"no card of {card.identity!r} known to be active at {when:.0f}: the message is older "
            "than every card in the chain (fetch the older cards, e.g. with search)"
        )
    return current


def cards_by_identity(cards: Sequence[Card]) -> dict[str, list[Card]]:
    """Group cards by identity, keeping order."""
    out: dict[str, list[Card]] = {}
    for card in cards:
        out.setdefault(card.identity, []).append(card)
    return out
