"""Ed25519 key pairs in Virgil's formats, key identifiers, and the X25519 view used for encryption.

Virgil's default key type is Ed25519, used both to sign and, converted to X25519, to encrypt.
Private keys travel as PKCS#8 DER, public keys as SubjectPublicKeyInfo DER (RFC 8410),
raw or base64.
The key identifier is the first 8 bytes of SHA-512 of the SPKI DER.

`cryptography` provides every primitive. Hand-written here because it lacks them: the check for
small-order and non-canonical Ed25519 encodings (it accepts them), and the birational map from an
Ed25519 public key to its X25519 form (u = (1 + y) / (1 - y) mod p).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from twilio_e2ee.errors import MalformedInputError, UnusableKeyError

__all__ = [
    "ED25519_PKCS8_PREFIX",
    "ED25519_SPKI_PREFIX",
    "KeyPair",
    "PrivateKey",
    "PublicKey",
    "export_private_key",
    "export_public_key",
    "generate_key_pair",
    "import_private_key",
    "import_public_key",
    "key_id",
    "load_bytes",
]

ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
KEY_ID_LENGTH = 8

# Curve25519 field prime and Edwards curve constant d = -121665/121666 mod p.
_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P


def load_bytes(data: bytes | bytearray | memoryview | str, what: str) -> bytes:
    """Accept bytes, or base64 text (standard alphabet, canonical padding), and return bytes."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        try:
            raw = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedInputError(f"{what}: not valid base64 ({exc})") from None
        return raw
    raise MalformedInputError(f"{what}: expected bytes or base64 str, got {type(data).__name__}")


def _jacobi(a: int, n: int = _P) -> int:
    """Jacobi symbol (a/n) by the binary algorithm (about 4x faster than Euler's criterion)."""
    a %= n
    t = 1
    while a:
        z = (a & -a).bit_length() - 1
        if z:
            a >>= z
            if z & 1 and n & 7 in (3, 5):
                t = -t
        if a & 3 == 3 and n & 3 == 3:
            t = -t
        a, n = n % a, a
    return t if n == 1 else 0


# The y-coordinates of the 8 points of small order (identity, order 2, 4 and 8). A canonical
# encoding is of small order exactly when its y is one of these (x is then fixed up to sign).
_Y_ORDER_8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
_SMALL_ORDER_Y = frozenset({1, _P - 1, 0, _Y_ORDER_8, _P - _Y_ORDER_8})


def _edwards_small_order_or_invalid(raw: bytes, *, on_curve: bool = True) -> str | None:
    """Return why a 32-byte Ed25519 encoding is unusable, or None if it is a sound point.

    Rejects non-canonical encodings (y >= p; x = 0 with the sign bit set only occurs for y = ±1,
    which are of small order), points of small order (the 14 encodings listed in
    research/security.md §2.8 and their other forms) and, with `on_curve`, encodings that are
    not on the curve (one Jacobi symbol, ~10-25 µs; the rest costs ~1 µs).
    """
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        return "non-canonical encoding (y >= p)"
    if y in _SMALL_ORDER_Y:
        return "small-order point"
    if not on_curve:
        return None
    # On the curve iff x^2 = (y^2 - 1) / (d y^2 + 1) has a root, i.e. the product is a square
    # (d y^2 + 1 is never 0 since -1/d is not a square; y^2 - 1 = 0 was excluded above).
    y2 = y * y % _P
    if _jacobi((y2 - 1) * (_D * y2 + 1)) != 1:
        return "not a point on the curve"
    return None


def _edwards_to_montgomery(raw: bytes) -> bytes:
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow((1 - y) % _P, -1, _P) % _P
    return u.to_bytes(32, "little")


def edwards_to_montgomery_checked(raw: bytes, what: str, *, on_curve: bool = True) -> bytes:
    """Validate an Ed25519 public key encoding and return its X25519 form (u, 32 bytes LE).

    Raises UnusableKeyError for non-canonical or small-order encodings and, with `on_curve`,
    for encodings that are not on the curve.
    """
    why = _edwards_small_order_or_invalid(raw, on_curve=on_curve)
    if why is not None:
        raise UnusableKeyError(f"unsafe Ed25519 {what}: {why}")
    return _edwards_to_montgomery(raw)


@dataclass(frozen=True, eq=False)
class PublicKey:
    """An Ed25519 public key (validated: canonical, on the curve, not of small order)."""

    raw: bytes
    _key: Ed25519PublicKey = field(repr=False)

    @classmethod
    def from_raw(cls, raw: bytes) -> PublicKey:
        """Import a raw 32-byte Ed25519 public key, rejecting unsafe encodings."""
        if len(raw) != 32:
            raise MalformedInputError(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
        why = _edwards_small_order_or_invalid(raw)
        if why is not None:
            raise UnusableKeyError(f"unsafe Ed25519 public key: {why}")
        return cls(raw, Ed25519PublicKey.from_public_bytes(raw))

    @cached_property
    def der(self) -> bytes:
        """SubjectPublicKeyInfo DER (44 bytes)."""
        return ED25519_SPKI_PREFIX + self.raw

    @cached_property
    def identifier(self) -> bytes:
        """Virgil's key id: the first 8 bytes of SHA-512 of the SPKI DER."""
        return hashlib.sha512(self.der).digest()[:KEY_ID_LENGTH]

    @cached_property
    def x25519(self) -> X25519PublicKey:
        """The X25519 form of this key, as Virgil converts it for ECDH."""
        return X25519PublicKey.from_public_bytes(_edwards_to_montgomery(self.raw))

    @property
    def ed25519(self) -> Ed25519PublicKey:
        """The underlying `cryptography` key object."""
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"PublicKey(id={self.identifier.hex()})"


@dataclass(frozen=True, eq=False)
class PrivateKey:
    """An Ed25519 private key; `public_key` is its validated public half."""

    seed: bytes = field(repr=False)
    _key: Ed25519PrivateKey = field(repr=False)
    public_key: PublicKey = field(repr=False)

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """Import a raw 32-byte Ed25519 private key (the RFC 8032 seed)."""
        if len(seed) != 32:
            raise MalformedInputError(f"Ed25519 private key must be 32 bytes, got {len(seed)}")
        key = Ed25519PrivateKey.from_private_bytes(seed)
        pub = key.public_key().public_bytes_raw()
        return cls(seed, key, PublicKey(pub, Ed25519PublicKey.from_public_bytes(pub)))

    @property
    def identifier(self) -> bytes:
        """The key id of the public half."""
        return self.public_key.identifier

    @property
    def ed25519(self) -> Ed25519PrivateKey:
        """The underlying `cryptography` key object."""
        return self._key

    @cached_property
    def x25519(self) -> X25519PrivateKey:
        """The X25519 form of this key: clamp(SHA-512(seed)[:32]), as Virgil converts it."""
        return X25519PrivateKey.from_private_bytes(hashlib.sha512(self.seed).digest()[:32])

    @cached_property
    def der(self) -> bytes:
        """PKCS#8 DER (48 bytes)."""
        return ED25519_PKCS8_PREFIX + self.seed

    def __repr__(self) -> str:
        return f"PrivateKey(id={self.identifier.hex()})"


@dataclass(frozen=True)
class KeyPair:
    """A private key and its public key."""

    private_key: PrivateKey
    public_key: PublicKey


def generate_key_pair() -> KeyPair:
    """Generate a fresh Ed25519 key pair."""
    priv = PrivateKey.from_seed(Ed25519PrivateKey.generate().private_bytes_raw())
    return KeyPair(priv, priv.public_key)


def import_private_key(data: bytes | str) -> PrivateKey:
    """Import an Ed25519 private key: PKCS#8 DER or PEM, raw 32 bytes, or base64 of either."""
    raw = load_bytes(data, "private key")
    if len(raw) == 32:
        return PrivateKey.from_seed(raw)
    if len(raw) == len(ED25519_PKCS8_PREFIX) + 32 and raw.startswith(ED25519_PKCS8_PREFIX):
        return PrivateKey.from_seed(raw[len(ED25519_PKCS8_PREFIX) :])
    try:
        loader = (
            serialization.load_pem_private_key
            if raw.lstrip().startswith(b"-----")
            else serialization.load_der_private_key
        )
        key = loader(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MalformedInputError(f"private key: not PKCS#8 Ed25519 ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UnusableKeyError(f"private key: expected Ed25519, got {type(key).__name__}")
    return PrivateKey.from_seed(key.private_bytes_raw())


def import_public_key(data: bytes | str) -> PublicKey:
    """Import an Ed25519 public key: SPKI DER (or PEM), raw 32 bytes, or base64 of either."""
    raw = load_bytes(data, "public key")
    if len(raw) == 32:
        return PublicKey.from_raw(raw)
    if len(raw) == len(ED25519_SPKI_PREFIX) + 32 and raw.startswith(ED25519_SPKI_PREFIX):
        return PublicKey.from_raw(raw[len(ED25519_SPKI_PREFIX) :])
    try:
        loader = (
            serialization.load_pem_public_key
            if raw.lstrip().startswith(b"-----")
            else serialization.load_der_public_key
        )
        key = loader(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MalformedInputError(f"public key: not SubjectPublicKeyInfo Ed25519 ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UnusableKeyError(f"public key: expected Ed25519, got {type(key).__name__}")
    return PublicKey.from_raw(key.public_bytes_raw())


def export_private_key(key: PrivateKey) -> bytes:
    """Export as PKCS#8 DER, Virgil's private-key format."""
    _require(key, PrivateKey, "export_private_key")
    return key.der


def export_public_key(key: PublicKey) -> bytes:
    """Export as SubjectPublicKeyInfo DER, Virgil's public-key format."""
    _require(key, PublicKey, "export_public_key")
    return key.der


def key_id(public_key: PublicKey | PrivateKey) -> bytes:
    """Virgil's 8-byte key identifier of a public key (or of a private key's public half)."""
    if isinstance(public_key, PrivateKey):
        return public_key.identifier
    _require(public_key, PublicKey, "key_id")
    return public_key.identifier


def _require(value: object, cls: type, where: str) -> None:
    if not isinstance(value, cls):
        raise UnusableKeyError(f"{where}: expected {cls.__name__}, got {type(value).__name__}")
