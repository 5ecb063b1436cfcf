"""Error answers of the mock Cards + Keyknox service, in Virgil's shape ``{"code", "message"}``.

Codes marked *Virgil* are the real service's, as seen in Virgil's SDKs (research/virgil.md §1.2):
clients react to them (E3Kit retries once on 20304, maps 50010 to "group ticket exists", …).
The rest are this mock's choices, grouped in Virgil's ranges (2030x tokens, 4xxxx cards,
500xx Keyknox):

=====  ======  ===========================================================================
code   status  meaning
=====  ======  ===========================================================================
10000  500     internal error of the mock
10001  404/405 no such endpoint / method
20300  401     Authorization header missing or not ``Virgil <jwt>``
20301  401     the JWT is malformed, forged, or for another app / app key (kid, iss, alg, cty, typ)
20304  401     the JWT has expired or is not yet valid (*Virgil*)
40000  400     request body is not UTF-8 JSON text (or its Content-Length is not a number),
               or not the JSON object/array the endpoint takes
40001  413     request body larger than 64 KiB
40100  400     raw card model malformed (fields, base64)
40101  400     card content invalid (version not "5.0", identity, created_at, public key unusable
               or of small order)
40102  400     self signature missing or not valid under the card's key
40103  403     card identity differs from the JWT identity
40104  400     previous_card_id unknown, of another identity, revoked or already superseded
40105  409     this card (same id) is already published
40106  400     the client sent a signature for the reserved signer "virgil"
40107  400     identities / card_ids list invalid (not strings, empty, more than allowed)
40108  400     card id is not 64 lowercase hex digits
40300  403     revoking a card of another identity
40400  404     no card with that id
50000  400     Keyknox body invalid (root/path/key/identity, base64 of meta/value)
50010  409     Virgil-Keyknox-Previous-Hash missing or stale (*Virgil*)
50017  404     no Keyknox data readable by the caller at that place (*Virgil*)
50021  400     Keyknox push without a non-empty ``identities`` list (*Virgil*)
=====  ======  ===========================================================================
"""

from __future__ import annotations

from twilio_e2ee.errors import ServiceError

__all__ = ["ApiError"]

INTERNAL = 10000
UNKNOWN_ENDPOINT = 10001
AUTH_HEADER = 20300
TOKEN_INVALID = 20301
TOKEN_EXPIRED = 20304
BAD_JSON = 40000
TOO_LARGE = 40001
CARD_MALFORMED = 40100
CARD_CONTENT = 40101
SELF_SIGNATURE = 40102
IDENTITY_MISMATCH = 40103
PREVIOUS_CARD = 40104
CARD_EXISTS = 40105
RESERVED_SIGNER = 40106
BAD_LIST = 40107
BAD_CARD_ID = 40108
NOT_OWNER = 40300
CARD_NOT_FOUND = 40400
KEYKNOX_BAD_REQUEST = 50000
KEYKNOX_STALE_HASH = 50010
KEYKNOX_NO_DATA = 50017
KEYKNOX_NO_IDENTITIES = 50021


class ApiError(ServiceError):
    """Raised inside a handler; becomes the HTTP answer ``status`` + ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message, status=status, code=code)
        self.status: int = status
        self.code: int = code
        self.message = message

    def body(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}
