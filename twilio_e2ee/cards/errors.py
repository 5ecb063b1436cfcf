"""Exceptions of the cards subpackage (all derive from classes in :mod:`twilio_e2ee.errors`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twilio_e2ee.errors import (
    AuthenticationError,
    CardError,
    CardVerificationError,
    ServiceError,
    ServiceUnavailableError,
)
from twilio_e2ee.errors import KeyChangedError as _BaseKeyChangedError

if TYPE_CHECKING:
    from twilio_e2ee.cards.model import Card

__all__ = [
    "CardNotActiveError",
    "CardQueryError",
    "CardResponseMismatchError",
    "CardSignatureInvalidError",
    "CardSignatureMissingError",
    "CardWhitelistError",
    "CardsAuthenticationError",
    "CardsBadRequestError",
    "CardsNotFoundError",
    "CardsServiceError",
    "CardsServiceUnavailableError",
    "InvalidServiceResponseError",
    "KeyChangedError",
    "MalformedCardError",
    "PinStoreError",
]


class MalformedCardError(CardError):
    """A raw signed model or its content snapshot is not a well-formed Virgil v5 card."""


class CardNotActiveError(CardError):
    """No card in the chain was active at the requested moment."""


class CardQueryError(CardError):
    """A card query was invalid before anything was sent (empty identity list, bad card id)."""


class PinStoreError(CardError):
    """The local pin store is unreadable or damaged (it is never overwritten silently)."""


class CardSignatureMissingError(CardVerificationError):
    """A required signature (self, service, or allow-listed signer) is absent."""


class CardSignatureInvalidError(CardVerificationError):
    """A signature is present but does not verify under the expected key."""


class CardWhitelistError(CardVerificationError):
    """No signer of an allow-list signed the card with a valid signature."""


class CardResponseMismatchError(CardVerificationError):
    """The service's answer does not match the request (CardManager's client-side checks)."""


class KeyChangedError(_BaseKeyChangedError):
    """A user's card changed to one not chained from the pinned card.

    The pin is *not* updated: the application must show the change to the user and call
    ``PinningManager.acknowledge(identity, new_card)`` to accept it.
    """

    def __init__(
        self, message: str, *, identity: str, old_card: Card, new_card: Card, reason: str
    ) -> None:
        super().__init__(message)
        self.identity = identity
        self.old_card = old_card
        self.new_card = new_card
        self.reason = reason

    @property
    def key_changed(self) -> bool:
        """True if the public key differs (not just the card)."""
        return self.old_card.public_key != self.new_card.public_key


class CardsServiceError(ServiceError):
    """The Cards service answered with an error ({"code", "message"} when it sent one)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        service_message: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.service_message = service_message
        self.retry_after: float | None = None  # seconds, from a Retry-After header


class CardsBadRequestError(CardsServiceError):
    """The service refused the request as invalid (400, 409, 422 and other 4xx)."""


class CardsNotFoundError(CardsServiceError):
    """The requested card does not exist (404)."""


class CardsAuthenticationError(CardsServiceError, AuthenticationError):
    """The token was refused (401/403), also after one retry with a fresh token."""


class CardsServiceUnavailableError(CardsServiceError, ServiceUnavailableError):
    """The service could not be reached, or answered 5xx / 429."""


class InvalidServiceResponseError(CardsServiceError):
    """A 2xx answer whose body is not what the Cards API returns."""
