"""The single exception hierarchy of twilio_e2ee.

Every error the package raises on purpose derives from :class:`E2EEError`, so applications can
catch one type. Each area has its own branch; within a branch, types say *what went wrong* so
callers can react (ask for another password, re-fetch a card, retry later) without parsing text.

Subpackages add narrower classes in their own modules, always deriving from a class here.
"""

from __future__ import annotations


class E2EEError(Exception):
    """Base class of every error raised by twilio_e2ee."""


# --- crypto -----------------------------------------------------------------------------------


class CryptoError(E2EEError):
    """A cryptographic operation failed."""


class MalformedInputError(CryptoError):
    """Input bytes are not a well-formed key, signature or message (bad DER, base64, length)."""


class UnusableKeyError(CryptoError):
    """A key is of the wrong type, small-order / non-canonical, or otherwise cannot be used."""


class NotARecipientError(CryptoError):
    """The message is not encrypted to the given private key."""


class IntegrityError(CryptoError):
    """Authentication failed: tampered ciphertext, wrong key, or a failed key commitment."""


class SignatureError(IntegrityError):
    """A signature is missing or does not verify under the expected key(s)."""


# --- cards and trust ----------------------------------------------------------------------------


class CardError(E2EEError):
    """A card is malformed or failed verification."""


class CardVerificationError(CardError):
    """A card's signatures or the service's answer did not pass the verifier's checks."""


class KeyChangedError(CardError):
    """A user's key changed since it was pinned; the application must acknowledge it."""


# --- services (HTTP) ------------------------------------------------------------------------------


class ServiceError(E2EEError):
    """A remote service (Cards, Keyknox, backend, Twilio) answered with an error.

    ``status`` is the HTTP status, ``code`` the service's own error code when it sent one.
    """

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class ServiceUnavailableError(ServiceError):
    """The service could not be reached or answered 5xx / 429 after retries."""


class AuthenticationError(ServiceError):
    """Credentials or a token were refused (401/403)."""


# --- tokens ---------------------------------------------------------------------------------------


class TokenError(E2EEError):
    """A token (Virgil JWT, Twilio access token, session token) is malformed or invalid."""


class TokenExpiredError(TokenError):
    """A token has expired (or is not yet valid)."""


# --- local key storage ----------------------------------------------------------------------------


class KeyStorageError(E2EEError):
    """The local private-key store failed."""


class WrongPasswordError(KeyStorageError):
    """The password does not open the stored key or backup."""


class CorruptedStorageError(KeyStorageError):
    """A stored key file or backup blob is damaged or not in a format we know."""


class KeyEntryExistsError(KeyStorageError):
    """A key is already stored under that name; it is never overwritten silently."""


class KeyEntryNotFoundError(KeyStorageError):
    """No key is stored under that name."""


# --- configuration --------------------------------------------------------------------------------


class ConfigurationError(E2EEError):
    """Configuration is incomplete or inconsistent (names what is missing)."""


# --- E3Kit-style client ---------------------------------------------------------------------------


class EThreeError(E2EEError):
    """An E3Kit-level operation failed (mirrors E3Kit's SdkError)."""


# --- Twilio adapter -------------------------------------------------------------------------------


class ChatError(E2EEError):
    """The encrypting Twilio adapter failed."""
