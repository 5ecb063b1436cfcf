"""Safety numbers: a human-comparable fingerprint of two users' keys (after Signal's design).

Construction (version 0), documented so other implementations can reproduce it:

1. For each user, ``h = SHA-512(b"\\x00\\x00" ‖ spki_der ‖ utf8(identity))`` then 5200 times
   ``h = SHA-512(h ‖ spki_der)``, where ``spki_der`` is the 44-byte SubjectPublicKeyInfo DER of
   the user's Ed25519 key (Virgil's public-key format).
2. The user's 30-digit half: the first 30 bytes of ``h`` in six 5-byte chunks, each read as a
   big-endian integer modulo 100000 and written as 5 decimal digits.
3. The safety number: the two halves sorted as strings and concatenated (60 digits), so both users
   compute the same number. Shown as 12 groups of 5 digits.

Both users compare the numbers (in person or over another channel); equal numbers mean neither
directory nor network substituted a key. The iteration count makes a brute-force search for a
colliding key expensive, as in Signal.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from twilio_e2ee.cards.model import Card
from twilio_e2ee.crypto.keys import PublicKey
from twilio_e2ee.errors import CardError

__all__ = ["SAFETY_NUMBER_ITERATIONS", "SafetyNumber", "fingerprint_digits", "safety_number"]

SAFETY_NUMBER_VERSION = b"\x00\x00"
SAFETY_NUMBER_ITERATIONS = 5200


def fingerprint_digits(identity: str, public_key: PublicKey) -> str:
    """One user's 30-digit half of a safety number."""
    if not isinstance(identity, str) or not identity:
        raise CardError("safety number: identity must be a non-empty string")
    if not isinstance(public_key, PublicKey):
        raise CardError(f"safety number: expected a PublicKey, got {type(public_key).__name__}")
    try:
        identity_bytes = identity.encode("utf-8")
    except UnicodeEncodeError:
        raise CardError("safety number: identity is not valid text") from None
    der = public_key.der
    digest = hashlib.sha512(SAFETY_NUMBER_VERSION + der + identity_bytes).digest()
    for _ in range(SAFETY_NUMBER_ITERATIONS):
        digest = hashlib.sha512(digest + der).digest()
    return "".join(
        f"{int.from_bytes(digest[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5)
    )


@dataclass(frozen=True)
class SafetyNumber:
    """A 60-digit safety number; ``str()`` shows it in groups of five."""

    digits: str

    @property
    def groups(self) -> list[str]:
        return [self.digits[i : i + 5] for i in range(0, len(self.digits), 5)]

    def matches(self, other: SafetyNumber | str) -> bool:
        """Compare with another number or with digits typed by a user (spaces ignored)."""
        text = other.digits if isinstance(other, SafetyNumber) else "".join(str(other).split())
        return hmac.compare_digest(text.encode("utf-8", "replace"), self.digits.encode())

    def __str__(self) -> str:
        rows = [" ".join(self.groups[i : i + 4]) for i in range(0, 12, 4)]
        return "\n".join(rows)


def safety_number(a: Card | tuple[str, PublicKey], b: Card | tuple[str, PublicKey]) -> SafetyNumber:
    """The safety number of two users, given their cards or ``(identity, public_key)`` pairs.

    Order-independent: ``safety_number(a, b) == safety_number(b, a)``.
    """
    halves = []
    for side in (a, b):
        if isinstance(side, Card):
            halves.append(fingerprint_digits(side.identity, side.public_key))
        elif isinstance(side, tuple) and len(side) == 2:
            halves.append(fingerprint_digits(side[0], side[1]))
        else:
            raise CardError("safety number: give a Card or an (identity, PublicKey) pair")
    halves.sort()
    return SafetyNumber(halves[0] + halves[1])
