"""Virgil's encrypted messages, byte-compatible with virgil-crypto and E3Kit.

A message is ``message info (clear DER header) || body || [encrypted footer]``; see
`message_info.py` for the header and `ecies.py` for the per-recipient key wrap. Three modes:

* ``encrypt`` — a random 32-byte key and 12-byte nonce, AES-256-GCM over the data, no signature.
* ``sign_then_encrypt`` (legacy; E3Kit's deprecated ``encrypt``) — as ``encrypt``, plus the
  sender's signature and key id *in the clear* header (custom params ``VIRGIL-DATA-SIGNATURE``,
  ``VIRGIL-DATA-SIGNER-ID``): anyone holding the message learns who sent it and can test guesses
  of the plaintext against the signature. Readable for old messages; write it only for old peers.
* ``auth_encrypt`` (virgil-crypto ``signAndEncrypt``, E3Kit ``authEncrypt``) — HKDF-SHA512 splits
  a random master key into data key/nonce and footer key/nonce; the data (randomly padded to
  160-byte frames) is AES-GCM encrypted with the signed-data info as AAD, then the footer
  carrying the signer id and Ed25519 signature of SHA-512(data) is encrypted separately.

Beyond Virgil: messages we write carry a key commitment (custom param ``TE2E-KEY-COMMITMENT``,
HMAC-SHA256 over the whole message info keyed from the message key). Virgil's libraries ignore
it; our decryption checks it when present, so one header cannot open to different keys (and
thus different plaintexts) for different recipients, and no header byte can be changed. Every
ephemeral key is checked (canonical, on the curve, not of small order), the parser is strict,
and decryption goes straight to its own recipient entry.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from twilio_e2ee.crypto import der
from twilio_e2ee.crypto.der import DerReader
from twilio_e2ee.crypto.ecies import unwrap_key, wrap_key_for_all
from twilio_e2ee.crypto.keys import PrivateKey, PublicKey, load_bytes
from twilio_e2ee.crypto.message_info import (
    ALG_ED25519,
    COMMITMENT_LENGTH,
    COMMITMENT_PARAM,
    SIGNATURE_PARAM,
    SIGNED_DATA_INFO,
    SIGNER_ID_PARAM,
    CustomValue,
    MessageInfo,
    build_message_info,
    commitment_placeholder_entry,
    parse_message_info,
    recipient_entry,
)
from twilio_e2ee.crypto.padding import pad, unpad
from twilio_e2ee.crypto.signatures import raw_signature, sign, sign_digest
from twilio_e2ee.errors import (
    IntegrityError,
    MalformedInputError,
    NotARecipientError,
    SignatureError,
    UnusableKeyError,
)

__all__ = [
    "DecryptedMessage",
    "MessageMode",
    "MessageSummary",
    "auth_decrypt",
    "auth_decrypt_message",
    "auth_encrypt",
    "decrypt",
    "decrypt_message",
    "decrypt_then_verify",
    "decrypt_then_verify_message",
    "encrypt",
    "inspect_message",
    "message_recipient_ids",
    "sign_then_encrypt",
]

MessageMode = Literal["encrypt", "sign_then_encrypt", "auth_encrypt"]
Keys = PublicKey | Sequence[PublicKey]
BytesLike = bytes | bytearray | memoryview

_TAG = 16
_COMMITMENT_INFO = b"twilio-e2ee/v1 key commitment"
_ZERO_COMMITMENT = bytes(COMMITMENT_LENGTH)
_SIGNER_INFO_PREFIX = bytes.fromhex("020100")


@dataclass(frozen=True)
class DecryptedMessage:
    """A decrypted message and what is known about it.

    `signer_key` is the key whose signature verified (None when unsigned or not verified);
    `signer_key_id` the signer id the message names; `key_committed` is True when the message
    carried our key commitment and it checked out (every header byte is then authenticated).
    """

    plaintext: bytes
    mode: MessageMode
    signer_key: PublicKey | None
    signer_key_id: bytes | None
    key_committed: bool
    padded: bool
    recipient_count: int


# --- argument handling --------------------------------------------------------------------------


def _data(data: object, where: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise MalformedInputError(f"{where}: data must be bytes, got {type(data).__name__}")


def _public_keys(keys: object, where: str, what: str) -> list[PublicKey]:
    items: list[object]
    if isinstance(keys, PublicKey):
        items = [keys]
    elif isinstance(keys, Sequence) and not isinstance(keys, (str, bytes, bytearray)):
        items = list(keys)
    else:
        raise UnusableKeyError(f"{where}: {what} must be a PublicKey or a sequence of them")
    out: list[PublicKey] = []
    seen: set[bytes] = set()
    for key in items:
        if not isinstance(key, PublicKey):
            raise UnusableKeyError(f"{where}: {what} must be PublicKey, got {type(key).__name__}")
        if key.identifier not in seen:  # E3Kit adds the sender; duplicates add nothing
            seen.add(key.identifier)
            out.append(key)
    if not out:
        raise UnusableKeyError(f"{where}: no {what} given")
    return out


def _private_key(key: object, where: str) -> PrivateKey:
    if not isinstance(key, PrivateKey):
        raise UnusableKeyError(f"{where}: expected PrivateKey, got {type(key).__name__}")
    return key


def _matches(key_id: bytes, key: PublicKey) -> bool:
    """Does `key_id` name `key` (SHA-512[:8] id, or the legacy full SHA-256 id)?"""
    if len(key_id) == 32:
        return hashlib.sha256(key.der).digest() == key_id
    return key_id == key.identifier


# --- key commitment -----------------------------------------------------------------------------


def _commitment(key: bytes, header_with_zero_commitment: bytes) -> bytes:
    """HMAC-SHA256 over the message info, under a key derived from the message key.

    HMAC with a collision-resistant hash commits to its key: finding two message keys that give
    the same value for one header is a SHA-256 collision, so a header opens under one key only.
    """
    commit_key = hmac.digest(key, _COMMITMENT_INFO, "sha256")
    return hmac.digest(commit_key, header_with_zero_commitment, "sha256")


def _seal_header(
    entries: list[bytes],
    nonce: bytes,
    key: bytes,
    *,
    custom_params: dict[str, CustomValue],
    data_size: int | None,
    padded: bool,
    key_commitment: bool,
) -> bytes:
    if key_commitment:
        custom_params = {**custom_params, COMMITMENT_PARAM: _ZERO_COMMITMENT}
    header = build_message_info(
        entries, nonce, custom_params=custom_params, data_size=data_size, padded=padded
    )
    if not key_commitment:
        return header
    marker = commitment_placeholder_entry()
    offset = header.rindex(marker) + len(marker) - COMMITMENT_LENGTH
    tag = _commitment(key, header)
    return header[:offset] + tag + header[offset + COMMITMENT_LENGTH :]


def _entries(key: bytes, recipients: list[PublicKey]) -> list[bytes]:
    envelopes = wrap_key_for_all(key, recipients)
    return [recipient_entry(r.identifier, e) for r, e in zip(recipients, envelopes, strict=True)]


# --- writing ------------------------------------------------------------------------------------


def encrypt(
    data: BytesLike,
    recipient_public_keys: Keys,
    *,
    padding: bool = False,
    key_commitment: bool = True,
) -> bytes:
    """Encrypt `data` to one or many recipients, unsigned (virgil-crypto ``encrypt``).

    `padding` adds Virgil's random padding to 160-byte frames. `key_commitment=False` writes the
    byte-for-byte Virgil form without our commitment parameter.
    """
    plaintext = _data(data, "encrypt")
    recipients = _public_keys(recipient_public_keys, "encrypt", "recipient keys")
    key, nonce = os.urandom(32), os.urandom(12)
    header = _seal_header(
        _entries(key, recipients),
        nonce,
        key,
        custom_params={},
        data_size=None,
        padded=padding,
        key_commitment=key_commitment,
    )
    return header + AESGCM(key).encrypt(nonce, pad(plaintext) if padding else plaintext, b"")


def sign_then_encrypt(
    data: BytesLike,
    signer_private_key: PrivateKey,
    recipient_public_keys: Keys,
    *,
    padding: bool = False,
    key_commitment: bool = True,
) -> bytes:
    """Legacy: sign, then encrypt, with the signature and signer id in the clear header.

    This is virgil-crypto's ``signThenEncrypt`` (E3Kit's deprecated ``encrypt``). Prefer
    :func:`auth_encrypt`: here the header reveals the sender and lets anyone check guesses of
    the plaintext. Offered only to talk to peers that read nothing else.
    """
    plaintext = _data(data, "sign_then_encrypt")
    signer = _private_key(signer_private_key, "sign_then_encrypt")
    recipients = _public_keys(recipient_public_keys, "sign_then_encrypt", "recipient keys")
    key, nonce = os.urandom(32), os.urandom(12)
    params: dict[str, CustomValue] = {
        SIGNATURE_PARAM: sign(plaintext, signer),
        SIGNER_ID_PARAM: signer.identifier,
    }
    header = _seal_header(
        _entries(key, recipients),
        nonce,
        key,
        custom_params=params,
        data_size=None,
        padded=padding,
        key_commitment=key_commitment,
    )
    return header + AESGCM(key).encrypt(nonce, pad(plaintext) if padding else plaintext, b"")


def _footer(signer: PrivateKey, digest: bytes) -> bytes:
    signer_info = der.sequence(
        _SIGNER_INFO_PREFIX,
        der.octet_string(signer.identifier),
        ALG_ED25519,
        der.octet_string(sign_digest(digest, signer)),
    )
    return der.sequence(_SIGNER_INFO_PREFIX, der.explicit(0, der.set_of([signer_info])))


def _split_master_key(master: bytes) -> bytes:
    """HKDF-SHA512, empty salt and info: data key 32 | nonce 12 | footer key 32 | nonce 12."""
    return HKDF(hashes.SHA512(), 88, salt=None, info=None).derive(master)


def auth_encrypt(
    data: BytesLike,
    signer_private_key: PrivateKey,
    recipient_public_keys: Keys,
    *,
    padding: bool = True,
    key_commitment: bool = True,
) -> bytes:
    """Sign and encrypt (E3Kit ``authEncrypt`` / virgil-crypto ``signAndEncrypt``).

    The signature travels inside the encrypted footer. E3Kit pads to 160-byte frames, so
    `padding` defaults to True. Add the sender's own key to the recipients to read it back later.
    """
    plaintext = _data(data, "auth_encrypt")
    signer = _private_key(signer_private_key, "auth_encrypt")
    recipients = _public_keys(recipient_public_keys, "auth_encrypt", "recipient keys")
    master = os.urandom(32)
    okm = _split_master_key(master)
    nonce = okm[32:44]
    body = pad(plaintext) if padding else plaintext
    footer = _footer(signer, hashlib.sha512(plaintext).digest())
    header = _seal_header(
        _entries(master, recipients),
        nonce,
        master,
        custom_params={},
        data_size=len(body),
        padded=padding,
        key_commitment=key_commitment,
    )
    return b"".join(
        (
            header,
            AESGCM(okm[:32]).encrypt(nonce, body, SIGNED_DATA_INFO),
            AESGCM(okm[44:76]).encrypt(okm[76:88], footer, b""),
        )
    )


# --- reading ------------------------------------------------------------------------------------


# The footer E3Kit writes: one Ed25519 signer with an 8-byte id (97 bytes, fixed layout).
_FOOTER_HEAD_8 = bytes.fromhex("305f020100a05a31583056020100 0408")
_FOOTER_MID = ALG_ED25519 + bytes.fromhex("0440")
_FOOTER_LEN_8 = len(_FOOTER_HEAD_8) + 8 + len(_FOOTER_MID) + 64


def _parse_footer(footer: bytes) -> list[tuple[bytes, bytes]]:
    """VirgilMessageInfoFooter → [(signer id, raw 64-byte signature)]."""
    if len(footer) == _FOOTER_LEN_8 and footer.startswith(_FOOTER_HEAD_8):
        mid = len(_FOOTER_HEAD_8) + 8
        if footer[mid : mid + len(_FOOTER_MID)] == _FOOTER_MID:  # exact match: valid DER
            return [(footer[len(_FOOTER_HEAD_8) : mid], footer[-64:])]
    what = "encrypted footer"
    top = DerReader(footer)
    r = top.enter(der.TAG_SEQUENCE, what)
    top.finish(what)
    r.expect(_SIGNER_INFO_PREFIX, f"{what}: version")
    outer = r.enter(0xA0, f"{what} signer infos")
    r.finish(what)
    infos = outer.enter(der.TAG_SET, f"{what} signer infos")
    outer.finish(what)
    out: list[tuple[bytes, bytes]] = []
    while not infos.at_end():
        si = infos.enter(der.TAG_SEQUENCE, f"{what} signer info")
        si.expect(_SIGNER_INFO_PREFIX, f"{what} signer info version")
        signer_id = si.octets(f"{what} signer id")
        if len(signer_id) not in (8, 32):
            raise MalformedInputError(f"{what}: signer id of unexpected length")
        si.expect(ALG_ED25519, f"{what}: signer algorithm is not Ed25519")
        signature = si.octets(f"{what} signature", size=64)
        si.finish(f"{what} signer info")
        out.append((signer_id, signature))
    if not out:
        raise MalformedInputError(f"{what}: no signer infos")
    return out


def _gcm_open(key: bytes, nonce: bytes, data: bytes, aad: bytes, what: str) -> bytes:
    if len(data) < _TAG:
        raise MalformedInputError(f"{what}: truncated")
    try:
        return AESGCM(key).decrypt(nonce, data, aad)
    except InvalidTag:
        raise IntegrityError(f"{what}: authentication failed (tampered or wrong key)") from None


@dataclass(frozen=True)
class _Opened:
    info: MessageInfo
    plaintext: bytes
    footer_signers: list[tuple[bytes, bytes]] | None
    committed: bool


def _open(data: BytesLike | str, private_key: object, where: str) -> _Opened:
    raw = load_bytes(data, "message")
    priv = _private_key(private_key, where)
    own_ids = (priv.identifier, hashlib.sha256(priv.public_key.der).digest())
    info = parse_message_info(raw, own_ids)
    if not info.recipients:
        raise NotARecipientError(
            f"{where}: the message is not encrypted to key id {priv.identifier.hex()}"
        )
    key = unwrap_key(info.recipients[0][1], priv)
    committed = False
    if info.commitment_offset is not None:
        off = info.commitment_offset
        header = raw[: info.length]
        expected = _commitment(key, header[:off] + _ZERO_COMMITMENT + header[off + 32 :])
        if not hmac.compare_digest(expected, header[off : off + COMMITMENT_LENGTH]):
            raise IntegrityError(f"{where}: key commitment mismatch (tampered header or key)")
        committed = True
    body = raw[info.length :]
    footer_signers = None
    if info.data_size is not None:
        okm = _split_master_key(key)
        if not hmac.compare_digest(okm[32:44], info.nonce):
            raise IntegrityError(f"{where}: header nonce does not match the message key")
        split = info.data_size + _TAG
        if len(body) < split + _TAG:
            raise MalformedInputError(f"{where}: message shorter than its declared data size")
        plaintext = _gcm_open(okm[:32], info.nonce, body[:split], SIGNED_DATA_INFO, "message body")
        footer = _gcm_open(okm[44:76], okm[76:88], body[split:], b"", "message footer")
        footer_signers = _parse_footer(footer)
    else:
        plaintext = _gcm_open(key, info.nonce, body, b"", "message body")
    if info.padded:
        plaintext = unpad(plaintext)
    return _Opened(info, plaintext, footer_signers, committed)


def _mode(opened: _Opened) -> MessageMode:
    params = opened.info.custom_params
    has_sig = SIGNATURE_PARAM in params or SIGNER_ID_PARAM in params
    if opened.footer_signers is not None:
        if has_sig:
            raise MalformedInputError("message carries both a clear and an encrypted signature")
        return "auth_encrypt"
    return "sign_then_encrypt" if has_sig else "encrypt"


def _verify_footer(opened: _Opened, candidates: list[PublicKey]) -> tuple[PublicKey, bytes]:
    assert opened.footer_signers is not None
    for signer_id, signature in opened.footer_signers:
        for key in candidates:
            if _matches(signer_id, key):
                try:
                    key.ed25519.verify(signature, hashlib.sha512(opened.plaintext).digest())
                except InvalidSignature:
                    raise SignatureError(
                        f"signature by key id {signer_id.hex()} does not verify"
                    ) from None
                return key, signer_id
    ids = ", ".join(s.hex() for s, _ in opened.footer_signers)
    raise SignatureError(f"signed by key id {ids}, which is not among the given signer keys")


def _verify_clear(opened: _Opened, candidates: list[PublicKey]) -> tuple[PublicKey, bytes]:
    params = opened.info.custom_params
    signature, signer_id = params.get(SIGNATURE_PARAM), params.get(SIGNER_ID_PARAM)
    if not isinstance(signature, bytes) or not isinstance(signer_id, bytes):
        raise MalformedInputError("signature custom params are missing or of the wrong type")
    raw = raw_signature(signature)
    for key in candidates:
        if _matches(signer_id, key):
            try:
                key.ed25519.verify(raw, hashlib.sha512(opened.plaintext).digest())
            except InvalidSignature:
                raise SignatureError(
                    f"signature by key id {signer_id.hex()} does not verify"
                ) from None
            return key, signer_id
    raise SignatureError(
        f"signed by key id {signer_id.hex()}, which is not among the given signer keys"
    )


def _result(
    opened: _Opened, mode: MessageMode, signer: PublicKey | None, signer_id: bytes | None
) -> DecryptedMessage:
    return DecryptedMessage(
        plaintext=opened.plaintext,
        mode=mode,
        signer_key=signer,
        signer_key_id=signer_id,
        key_committed=opened.committed,
        padded=opened.info.padded,
        recipient_count=opened.info.recipient_count,
    )


def _claimed_signer(opened: _Opened, mode: MessageMode) -> bytes | None:
    if mode == "auth_encrypt" and opened.footer_signers:
        return opened.footer_signers[0][0]
    value = opened.info.custom_params.get(SIGNER_ID_PARAM)
    return value if isinstance(value, bytes) else None


def _require_commitment(opened: _Opened, required: bool, where: str) -> None:
    if required and not opened.committed:
        raise IntegrityError(f"{where}: the message carries no key commitment")


def decrypt_message(
    data: BytesLike | str,
    recipient_private_key: PrivateKey,
    signer_public_keys: Keys | None = None,
    *,
    require_key_commitment: bool = False,
) -> DecryptedMessage:
    """Decrypt a message of any mode; verify its signature when `signer_public_keys` are given.

    Without signer keys a signed message is decrypted but its signature is not checked
    (`signer_key` is None). With them, a signed message must verify under the key its signer id
    names, and an unsigned one raises SignatureError.
    """
    opened = _open(data, recipient_private_key, "decrypt")
    _require_commitment(opened, require_key_commitment, "decrypt")
    mode = _mode(opened)
    if signer_public_keys is None:
        return _result(opened, mode, None, _claimed_signer(opened, mode))
    candidates = _public_keys(signer_public_keys, "decrypt", "signer keys")
    if mode == "auth_encrypt":
        return _result(opened, mode, *_verify_footer(opened, candidates))
    if mode == "sign_then_encrypt":
        return _result(opened, mode, *_verify_clear(opened, candidates))
    raise SignatureError("decrypt: the message is not signed")


def decrypt(data: BytesLike | str, recipient_private_key: PrivateKey) -> bytes:
    """Decrypt a message (bytes or base64) without checking any signature it may carry."""
    return decrypt_message(data, recipient_private_key).plaintext


def decrypt_then_verify_message(
    data: BytesLike | str,
    recipient_private_key: PrivateKey,
    signer_public_keys: Keys,
    *,
    require_key_commitment: bool = False,
) -> DecryptedMessage:
    """Legacy ``decryptThenVerify``: the message must carry a clear-header signature."""
    opened = _open(data, recipient_private_key, "decrypt_then_verify")
    _require_commitment(opened, require_key_commitment, "decrypt_then_verify")
    candidates = _public_keys(signer_public_keys, "decrypt_then_verify", "signer keys")
    if _mode(opened) != "sign_then_encrypt":
        raise SignatureError("decrypt_then_verify: not a sign_then_encrypt (legacy) message")
    return _result(opened, "sign_then_encrypt", *_verify_clear(opened, candidates))


def decrypt_then_verify(
    data: BytesLike | str, recipient_private_key: PrivateKey, signer_public_keys: Keys
) -> bytes:
    """Legacy ``decryptThenVerify`` (E3Kit's deprecated ``decrypt``); returns the plaintext."""
    return decrypt_then_verify_message(data, recipient_private_key, signer_public_keys).plaintext


def auth_decrypt_message(
    data: BytesLike | str,
    recipient_private_key: PrivateKey,
    signer_public_keys: Keys,
    *,
    require_key_commitment: bool = False,
) -> DecryptedMessage:
    """E3Kit ``authDecrypt``: decrypt and verify the footer signature; full result.

    With several candidate signer keys, the one whose key id the footer names is used.
    """
    opened = _open(data, recipient_private_key, "auth_decrypt")
    _require_commitment(opened, require_key_commitment, "auth_decrypt")
    candidates = _public_keys(signer_public_keys, "auth_decrypt", "signer keys")
    if _mode(opened) != "auth_encrypt":
        raise SignatureError("auth_decrypt: not an auth_encrypt message (no encrypted signature)")
    return _result(opened, "auth_encrypt", *_verify_footer(opened, candidates))


def auth_decrypt(
    data: BytesLike | str, recipient_private_key: PrivateKey, signer_public_keys: Keys
) -> bytes:
    """E3Kit ``authDecrypt``: decrypt and verify; returns the plaintext."""
    return auth_decrypt_message(data, recipient_private_key, signer_public_keys).plaintext


@dataclass(frozen=True)
class MessageSummary:
    """What anyone holding a message sees without a key: its clear header (not verified).

    `mode` is what the header declares; `signer_key_id` is visible only in the legacy
    sign_then_encrypt form; `key_committed` means the header carries our commitment parameter.
    """

    mode: MessageMode
    recipient_ids: tuple[bytes, ...]
    signer_key_id: bytes | None
    key_committed: bool
    padded: bool
    header_size: int
    total_size: int


def inspect_message(data: BytesLike | str) -> MessageSummary:
    """Read a message's clear header (strictly) without decrypting: for "what Twilio sees"."""
    raw = load_bytes(data, "message")
    info = parse_message_info(raw)
    params = info.custom_params
    mode: MessageMode
    if info.data_size is not None:
        mode = "auth_encrypt"
    elif SIGNATURE_PARAM in params or SIGNER_ID_PARAM in params:
        mode = "sign_then_encrypt"
    else:
        mode = "encrypt"
    signer = params.get(SIGNER_ID_PARAM)
    return MessageSummary(
        mode=mode,
        recipient_ids=tuple(key_id for key_id, _ in info.recipients),
        signer_key_id=signer if isinstance(signer, bytes) else None,
        key_committed=info.commitment_offset is not None,
        padded=info.padded,
        header_size=info.length,
        total_size=len(raw),
    )


def message_recipient_ids(data: BytesLike | str) -> list[bytes]:
    """The key ids a message is encrypted to, in header order (the whole header is checked)."""
    raw = load_bytes(data, "message")
    return [key_id for key_id, _ in parse_message_info(raw).recipients]
