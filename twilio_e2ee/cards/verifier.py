"""Card verification like Virgil's VirgilCardVerifier (sans-I/O).

Checks, in order: the ``self`` signature under the card's own key; the service (``virgil``)
signature under the configured Cards-service key (Virgil's production key by default; a mock's key
is passed in); and each allow-list: at least one of its signers must have validly signed the card.
The signed data of a signature is the content snapshot followed by the signature's own snapshot.

Unlike E3Kit, nothing is switched off because the service URL is not Virgil's: a verifier that
skips a check must be built that way explicitly, and doing so emits a :class:`SecurityWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from twilio_e2ee.cards.errors import (
    CardSignatureInvalidError,
    CardSignatureMissingError,
    CardWhitelistError,
    MalformedCardError,
)
from twilio_e2ee.cards.model import SIGNER_SELF, SIGNER_VIRGIL, Card, RawSignature
from twilio_e2ee.crypto.keys import PublicKey, import_public_key
from twilio_e2ee.crypto.signatures import verify
from twilio_e2ee.errors import CardVerificationError, E2EEError

__all__ = [
    "VIRGIL_SERVICE_PUBLIC_KEY_B64",
    "CardVerifier",
    "SecurityWarning",
    "WhitelistEntry",
    "virgil_service_public_key",
]

VIRGIL_SERVICE_PUBLIC_KEY_B64 = "MCowBQYDK2VwAyEAljOYGANYiVq1WbvVvoYIKtvZi2ji9bAhxyu6iV/LF8M="


class SecurityWarning(UserWarning):
    """A security check was disabled explicitly."""


def virgil_service_public_key() -> PublicKey:
    """The public key with which Virgil's production Cards service signs cards."""
    return import_public_key(VIRGIL_SERVICE_PUBLIC_KEY_B64)


@dataclass(frozen=True)
class WhitelistEntry:
    """An allowed extra signer: its signer name and public key."""

    signer: str
    public_key: PublicKey


def _to_public_key(key: PublicKey | bytes | str, what: str) -> PublicKey:
    if isinstance(key, PublicKey):
        return key
    try:
        return import_public_key(key)
    except E2EEError as exc:
        raise CardVerificationError(f"{what}: not a usable public key ({exc})") from None


def _signature_valid(card: Card, sig: RawSignature, key: PublicKey) -> bool:
    data = card.content_snapshot + (sig.snapshot or b"")
    return verify(data, sig.signature, key)


def _whitelists(
    whitelists: Iterable[Iterable[WhitelistEntry | tuple[str, PublicKey | bytes | str]]],
) -> tuple[tuple[WhitelistEntry, ...], ...]:
    """Allow-lists as tuples of :class:`WhitelistEntry` (CardVerificationError if malformed)."""
    lists: list[tuple[WhitelistEntry, ...]] = []
    try:
        for allow_list in whitelists:
            entries: list[WhitelistEntry] = []
            for item in allow_list:
                if isinstance(item, WhitelistEntry):
                    entries.append(item)
                    continue
                if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                    raise CardVerificationError("whitelist entries are (signer, public_key) pairs")
                key = _to_public_key(item[1], f"whitelist key {item[0]!r}")
                entries.append(WhitelistEntry(item[0], key))
            if not entries:
                raise CardVerificationError("an allow-list must name at least one signer")
            lists.append(tuple(entries))
    except TypeError:
        raise CardVerificationError("whitelists must be a list of lists of signers") from None
    return tuple(lists)


class CardVerifier:
    """Verifies cards; ``verify(card)`` raises a CardVerificationError subclass on failure.

    ``whitelists`` is a list of allow-lists, each a list of ``(signer, public_key)`` pairs (or
    :class:`WhitelistEntry`); for every allow-list, one of its signers must have signed the card.
    """

    def __init__(
        self,
        service_public_key: PublicKey | bytes | str | None = None,
        *,
        whitelists: Iterable[Iterable[WhitelistEntry | tuple[str, PublicKey | bytes | str]]] = (),
        verify_self_signature: bool = True,
        verify_service_signature: bool = True,
    ) -> None:
        self.service_public_key = (
            virgil_service_public_key()
            if service_public_key is None
            else _to_public_key(service_public_key, "service public key")
        )
        self.verify_self_signature = bool(verify_self_signature)
        self.verify_service_signature = bool(verify_service_signature)
        if not (self.verify_self_signature and self.verify_service_signature):
            skipped = [
                name
                for name, on in (
                    ("self", self.verify_self_signature),
                    ("service", self.verify_service_signature),
                )
                if not on
            ]
            warnings.warn(
                f"CardVerifier built with {' and '.join(skipped)} signature checks disabled",
                SecurityWarning,
                stacklevel=2,
            )
        self.whitelists = _whitelists(whitelists)

    @classmethod
    def for_service(cls, service_public_key: PublicKey | bytes | str) -> CardVerifier:
        """A verifier for a Cards service signing with ``service_public_key`` (e.g. the mock)."""
        return cls(service_public_key)

    def _check_signer(self, card: Card, signer: str, key: PublicKey, label: str) -> None:
        sig = card.raw.signature(signer)
        if sig is None:
            raise CardSignatureMissingError(f"card {card.id} of {card.identity!r} has no {label}")
        if not _signature_valid(card, sig, key):
            raise CardSignatureInvalidError(
                f"card {card.id} of {card.identity!r}: the {label} does not verify"
                + (
                    " (is the verifier configured with this Cards service's public key?)"
                    if signer == SIGNER_VIRGIL
                    else ""
                )
            )

    def verify(self, card: Card) -> None:
        """Raise CardVerificationError (a subclass) unless the card passes every check."""
        if not isinstance(card, Card):
            raise CardVerificationError(f"expected a Card, got {type(card).__name__}")
        if self.verify_self_signature:
            self._check_signer(card, SIGNER_SELF, card.public_key, "self signature")
        if self.verify_service_signature:
            self._check_signer(
                card, SIGNER_VIRGIL, self.service_public_key, "Cards service signature"
            )
        for allow_list in self.whitelists:
            present = False
            for entry in allow_list:
                sig = card.raw.signature(entry.signer)
                if sig is None:
                    continue
                present = True
                if _signature_valid(card, sig, entry.public_key):
                    break
            else:
                names = ", ".join(repr(e.signer) for e in allow_list)
                what = "no valid signature" if present else "no signature"
                raise CardWhitelistError(
                    f"card {card.id} of {card.identity!r}: {what} from any of {names}"
                )

    def verify_all(self, cards: Sequence[Card]) -> None:
        """Verify every card (and every attached predecessor)."""
        for card in cards:
            for link in card.chain():
                self.verify(link)

    def is_valid(self, card: Card) -> bool:
        """True if :meth:`verify` passes."""
        try:
            self.verify(card)
        except (CardVerificationError, MalformedCardError):
            return False
        return True
