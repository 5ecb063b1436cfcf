"""Virgil's per-recipient key wrap (ECIES, `vscf_ecies` defaults) for Ed25519/X25519 keys.

    ECIES-Envelope ::= SEQUENCE {
        version INTEGER (0),
        originator SubjectPublicKeyInfo (Ed25519, the ephemeral key),
        kdf SEQUENCE { OID kdf2 (1.0.18033.2.5.2), AlgorithmIdentifier sha384 },
        mac SEQUENCE { AlgorithmIdentifier sha384, OCTET STRING tag (48) },
        encryptedContent SEQUENCE { AlgorithmIdentifier aes256-CBC (OCTET STRING iv 16),
                                    OCTET STRING ciphertext } }

Shared secret Z = X25519(ephemeral, recipient); KDF2 (ISO 18033-2) with SHA-384 gives 80 bytes:
AES-256 key (32) || HMAC-SHA-384 key (48). The 32-byte message key is AES-256-CBC encrypted
(PKCS#7) and the ciphertext authenticated with HMAC-SHA-384 (encrypt-then-MAC).

Newer C library releases (virgil-crypto-lib 0.23) encrypt the key with AES-256-GCM instead
(AlgorithmIdentifier aes256-GCM with a 12-byte nonce, ciphertext || 16-byte tag, empty AAD; the
HMAC still covers the whole ciphertext). We read both and write CBC, which every Virgil release
reads (virgil-crypto JS 5 and E3Kit write CBC).

With an Ed25519 ephemeral key and a 32-byte message key every field has a fixed size, so the
envelope is always 226 bytes (CBC) or 222 bytes (GCM): writing and strict parsing compare the
fixed parts as constants (an exact-match DER check).

Speed: instead of an Ed25519 ephemeral key (whose X25519 form needs a conversion), we generate an
X25519 key and publish the Edwards y-coordinate of its u-coordinate, y = (u - 1) / (u + 1), with
sign bit 0. Virgil's decryptor maps it back with u = (1 + y) / (1 - y), the same u. The inversions
for many recipients share one modular inversion (Montgomery's batch trick).
"""

from __future__ import annotations

import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from twilio_e2ee.crypto.keys import PrivateKey, PublicKey, edwards_to_montgomery_checked
from twilio_e2ee.errors import IntegrityError, MalformedInputError, UnusableKeyError

__all__ = ["ENVELOPE_LENGTH", "ENVELOPE_LENGTH_GCM", "unwrap_key", "wrap_key_for_all"]

_P = 2**255 - 19
KEY_LENGTH = 32
_KEY_PADDING = b"\x10" * 16  # PKCS#7 padding of a 32-byte key to 48 bytes

# Fixed parts of the 226-byte envelope, in order; the variable parts sit between them.
_HEAD = bytes.fromhex("3081df020100302a300506032b6570032100")  # ... ephemeral key (32)
_MID_MAC = bytes.fromhex(
    "3018060728818c71020502300d06096086480165030402020500"  # kdf2 with sha384
    "3041300d060960864801650304020205000430"  # hmac sha384, tag (48)
)
_MID_IV = bytes.fromhex("3051301d060960864801650304012a0410")  # aes256-cbc, iv (16)
_MID_CT = bytes.fromhex("0430")  # ciphertext (48)
ENVELOPE_LENGTH = len(_HEAD) + 32 + len(_MID_MAC) + 48 + len(_MID_IV) + 16 + len(_MID_CT) + 48

# The AES-256-GCM variant: same head (with the shorter outer length) and KDF/MAC parts.
_HEAD_GCM = bytes.fromhex("3081db020100302a300506032b6570032100")
_MID_NONCE_GCM = bytes.fromhex("304d3019060960864801650304012e040c")  # aes256-gcm, nonce (12)
ENVELOPE_LENGTH_GCM = ENVELOPE_LENGTH - 4

_O_EPK = len(_HEAD)
_O_MID_MAC = _O_EPK + 32
_O_TAG = _O_MID_MAC + len(_MID_MAC)
_O_MID_IV = _O_TAG + 48
_O_IV = _O_MID_IV + len(_MID_IV)
_O_MID_CT = _O_IV + 16
_O_CT = _O_MID_CT + len(_MID_CT)
_O_NONCE_GCM = _O_MID_IV + len(_MID_NONCE_GCM)
_O_MID_CT_GCM = _O_NONCE_GCM + 12
_O_CT_GCM = _O_MID_CT_GCM + len(_MID_CT)
assert ENVELOPE_LENGTH == 226 and _O_CT + 48 == ENVELOPE_LENGTH
assert _O_CT_GCM + 48 == ENVELOPE_LENGTH_GCM


def _kdf2_sha384(z: bytes) -> bytes:
    """ISO 18033-2 KDF2 with SHA-384 → 80 bytes.

    KDF2 is SHA384(Z || counter_be32) for counters from 1, with no shared info: exactly ANSI
    X9.63's KDF, which `cryptography` provides.
    """
    return X963KDF(algorithm=hashes.SHA384(), length=80, sharedinfo=None).derive(z)


def _ephemeral_keys(count: int) -> list[tuple[X25519PrivateKey, bytes]]:
    """`count` fresh X25519 keys with the Ed25519 encoding of their public halves."""
    keys: list[X25519PrivateKey] = []
    us: list[int] = []
    while len(keys) < count:
        key = X25519PrivateKey.from_private_bytes(os.urandom(32))
        u = int.from_bytes(key.public_key().public_bytes_raw(), "little")
        if (u + 1) % _P == 0:  # no Edwards image (never happens for a real key); draw again
            continue
        keys.append(key)
        us.append(u)
    # Batch inversion of (u + 1) for all keys with a single modular inverse.
    prefix = [1] * (count + 1)
    for i, u in enumerate(us):
        prefix[i + 1] = prefix[i] * (u + 1) % _P
    inv = pow(prefix[count], -1, _P)
    out: list[tuple[X25519PrivateKey, bytes]] = [(keys[0], b"")] * count
    for i in range(count - 1, -1, -1):
        inv_i = inv * prefix[i] % _P  # 1 / (u_i + 1)
        inv = inv * (us[i] + 1) % _P
        y = (us[i] - 1) * inv_i % _P
        out[i] = (keys[i], y.to_bytes(32, "little"))
    return out


def _wrap(key: bytes, ephemeral: X25519PrivateKey, epk: bytes, recipient: X25519PublicKey) -> bytes:
    try:
        z = ephemeral.exchange(recipient)
    except ValueError:  # all-zero shared secret: a small-order recipient key
        raise UnusableKeyError("recipient key gives a degenerate shared secret") from None
    km = _kdf2_sha384(z)
    iv = os.urandom(16)
    enc = Cipher(algorithms.AES(km[:32]), modes.CBC(iv)).encryptor()
    ct = enc.update(key + _KEY_PADDING) + enc.finalize()
    tag = hmac.digest(km[32:80], ct, "sha384")
    return b"".join((_HEAD, epk, _MID_MAC, tag, _MID_IV, iv, _MID_CT, ct))


def wrap_key_for_all(key: bytes, recipients: list[PublicKey]) -> list[bytes]:
    """ECIES-wrap the 32-byte `key` for each recipient; one 226-byte DER envelope each."""
    if len(key) != KEY_LENGTH:
        raise UnusableKeyError("message key must be 32 bytes")
    ephemerals = _ephemeral_keys(len(recipients))
    return [
        _wrap(key, eph, epk, r.x25519) for (eph, epk), r in zip(ephemerals, recipients, strict=True)
    ]


def unwrap_key(envelope: bytes, private_key: PrivateKey) -> bytes:
    """Open one recipient's ECIES envelope (CBC or GCM form); return the 32-byte message key.

    Raises MalformedInputError for a malformed envelope, UnusableKeyError for a non-canonical
    or small-order ephemeral key, IntegrityError when the MAC or padding does not check out.
    """
    if len(envelope) == ENVELOPE_LENGTH and envelope[:_O_EPK] == _HEAD:
        gcm = False
        ok = envelope[_O_MID_IV:_O_IV] == _MID_IV and envelope[_O_MID_CT:_O_CT] == _MID_CT
    elif len(envelope) == ENVELOPE_LENGTH_GCM and envelope[:_O_EPK] == _HEAD_GCM:
        gcm = True
        ok = (
            envelope[_O_MID_IV:_O_NONCE_GCM] == _MID_NONCE_GCM
            and envelope[_O_MID_CT_GCM:_O_CT_GCM] == _MID_CT
        )
    else:
        ok = False
    if not ok or envelope[_O_MID_MAC:_O_TAG] != _MID_MAC:
        raise MalformedInputError("recipient key envelope: not Virgil's Ed25519 ECIES structure")
    # Non-canonical and small-order encodings are refused. The on-curve test is skipped here
    # (it would be a third of the unwrap cost): an off-curve y maps to a point on the twist,
    # X25519 is twist-secure and its clamped scalar kills the twist's small subgroup (a zero
    # result is refused below), and the MAC check then fails, as for any other wrong key.
    u = edwards_to_montgomery_checked(envelope[_O_EPK:_O_MID_MAC], "ephemeral key", on_curve=False)
    try:
        z = private_key.x25519.exchange(X25519PublicKey.from_public_bytes(u))
    except ValueError:
        raise UnusableKeyError("ephemeral key gives a degenerate shared secret") from None
    km = _kdf2_sha384(z)
    ct = envelope[-48:]
    if not hmac.compare_digest(hmac.digest(km[32:80], ct, "sha384"), envelope[_O_TAG:_O_MID_IV]):
        raise IntegrityError("recipient key envelope: MAC check failed (tampered or wrong key)")
    if gcm:
        try:
            return AESGCM(km[:32]).decrypt(envelope[_O_NONCE_GCM:_O_MID_CT_GCM], ct, b"")
        except InvalidTag:
            raise IntegrityError("recipient key envelope: authentication failed") from None
    dec = Cipher(algorithms.AES(km[:32]), modes.CBC(envelope[_O_IV:_O_MID_CT])).decryptor()
    padded = dec.update(ct) + dec.finalize()
    if padded[KEY_LENGTH:] != _KEY_PADDING:  # exactly a 32-byte key, PKCS#7-padded
        raise IntegrityError("recipient key envelope: bad padding")
    return padded[:KEY_LENGTH]
