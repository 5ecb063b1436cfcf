"""Virgil's message info (the clear header at the start of every encrypted message): build, parse.

    VirgilMessageInfo ::= SEQUENCE {
        version INTEGER,                 -- 0 plain, 2 with cipherKdf + footerInfo, 3 padded
        cmsContent ContentInfo,          -- envelopedData: recipients, AES-256-GCM nonce
        customParams  [0] EXPLICIT SET OF KeyValue OPTIONAL,
        cipherKdf     [1] EXPLICIT AlgorithmIdentifier OPTIONAL,  -- HKDF (SHA-512)
        footerInfo    [2] EXPLICIT VirgilFooterInfo OPTIONAL,
        cipherPadding [3] EXPLICIT AlgorithmIdentifier OPTIONAL } -- Virgil random padding
    KeyValue ::= SEQUENCE { key UTF8String,
                            value CHOICE { [0] INTEGER, [1] UTF8String, [2] OCTET STRING } }
    KeyTransRecipientInfo ::= SEQUENCE { version 2, rid [0] key id, Ed25519 AlgId,
                                         encryptedKey OCTET STRING (ECIES envelope) }

Only the shapes Virgil writes for Ed25519 keys are accepted (exact OIDs and parameters, canonical
DER, no trailing bytes). Parsing for decryption looks up one recipient entry by key id; the others
are only walked over, so the cost barely grows with the number of recipients.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from twilio_e2ee.crypto import der
from twilio_e2ee.crypto.der import DerReader
from twilio_e2ee.crypto.ecies import ENVELOPE_LENGTH, ENVELOPE_LENGTH_GCM
from twilio_e2ee.errors import MalformedInputError

__all__ = [
    "COMMITMENT_PARAM",
    "SIGNATURE_PARAM",
    "SIGNER_ID_PARAM",
    "CustomValue",
    "MessageInfo",
    "build_message_info",
    "parse_message_info",
    "recipient_entry",
]

CustomValue = int | str | bytes

SIGNATURE_PARAM = "VIRGIL-DATA-SIGNATURE"
SIGNER_ID_PARAM = "VIRGIL-DATA-SIGNER-ID"
# Ours (Virgil's readers ignore unknown custom params): HMAC over the whole message info, keyed
# from the message key, so a message info opens under one key only and no header byte can change.
COMMITMENT_PARAM = "TE2E-KEY-COMMITMENT"
COMMITMENT_LENGTH = 32
KNOWN_PARAMS = frozenset({SIGNATURE_PARAM, SIGNER_ID_PARAM, COMMITMENT_PARAM})

VERSION_PLAIN = 0
VERSION_KDF = 2
VERSION_PADDED = 3

NONCE_LENGTH = 12
KEY_ID_LENGTHS = (8, 32)  # SHA-512[:8] (current) and SHA-256 (useSha256Identifiers, legacy)

OID_ENVELOPED_DATA = bytes.fromhex("06092a864886f70d010703")
# EncryptedContentInfo { id-data, AlgorithmIdentifier { aes256-GCM, OCTET STRING nonce(12) } }
ENCRYPTED_CONTENT_PREFIX = bytes.fromhex(
    "3026 06092a864886f70d010701 3019 060960864801650304012e 040c"
)
ALG_ED25519 = bytes.fromhex("300506032b6570")
ALG_ED25519_NULL = bytes.fromhex("300706032b65700500")  # with NULL parameters: older writers
ALG_HKDF = bytes.fromhex("300d060b2a864886f70d010910031e")  # id-alg-hkdf-with-sha512 (RFC 8619)
ALG_PADDING = bytes.fromhex("300c060a2b0601040183ac1b0103")  # Virgil random padding
# VirgilSignedDataInfo { version 0, AlgorithmIdentifier sha512 }: also the body's GCM AAD.
SIGNED_DATA_INFO = bytes.fromhex("3012 020100 300d0609608648016503040203 0500")
ALG_HKDF_EXPLICIT = der.explicit(1, ALG_HKDF)
ALG_PADDING_EXPLICIT = der.explicit(3, ALG_PADDING)
_RECIPIENT_PREFIX = bytes.fromhex("020102")  # KeyTransRecipientInfo version 2
_MAX_DATA_SIZE = 1 << 40
# KeyTransRecipientInfo for an 8-byte key id and a 226-byte envelope: 254 bytes in all.
_ENTRY_HEAD_8 = bytes.fromhex("3081fb 020102 a00a 0408")
_ENTRY_MID = ALG_ED25519 + bytes.fromhex("0481e2")


@dataclass(frozen=True)
class MessageInfo:
    """A parsed message info.

    `recipients` holds the (key id, ECIES envelope) entries that were asked for (all of them when
    parsing without key ids); `recipient_count` counts every entry. `commitment_offset` is the
    offset of the key-commitment value inside the message info, when the message carries one.
    """

    version: int
    length: int
    nonce: bytes
    recipients: tuple[tuple[bytes, bytes], ...]
    recipient_count: int
    custom_params: dict[str, CustomValue] = field(default_factory=dict)
    has_kdf: bool = False
    data_size: int | None = None
    padded: bool = False
    commitment_offset: int | None = None


def recipient_entry(key_id: bytes, envelope: bytes) -> bytes:
    """One KeyTransRecipientInfo."""
    if len(key_id) == 8 and len(envelope) == ENVELOPE_LENGTH:  # the usual case, pre-encoded
        return b"".join((_ENTRY_HEAD_8, key_id, _ENTRY_MID, envelope))
    return der.sequence(
        _RECIPIENT_PREFIX,
        der.explicit(0, der.octet_string(key_id)),
        ALG_ED25519,
        der.octet_string(envelope),
    )


def _custom_param(key: str, value: CustomValue) -> bytes:
    if isinstance(value, bool):
        raise TypeError("custom param values are int, str or bytes")
    if isinstance(value, int):
        encoded = der.explicit(0, der.integer(value))
    elif isinstance(value, str):
        encoded = der.explicit(1, der.utf8_string(value))
    else:
        encoded = der.explicit(2, der.octet_string(bytes(value)))
    return der.sequence(der.utf8_string(key), encoded)


def footer_info(data_size: int) -> bytes:
    """VirgilFooterInfo { version 0, dataSize, [0] VirgilSignedDataInfo }."""
    return der.sequence(der.integer(0), der.integer(data_size), der.explicit(0, SIGNED_DATA_INFO))


def build_message_info(
    entries: Collection[bytes],
    nonce: bytes,
    *,
    custom_params: dict[str, CustomValue] | None = None,
    data_size: int | None = None,
    padded: bool = False,
) -> bytes:
    """Serialize a message info (DER). `data_size` given means signAndEncrypt (kdf + footer)."""
    if data_size is not None:
        version = VERSION_PADDED if padded else VERSION_KDF
    else:
        version = VERSION_PADDED if padded else VERSION_PLAIN
    enveloped = der.sequence(der.integer(2), der.set_of(entries), ENCRYPTED_CONTENT_PREFIX + nonce)
    parts = [der.integer(version), der.sequence(OID_ENVELOPED_DATA, der.explicit(0, enveloped))]
    if custom_params:
        params = [_custom_param(k, v) for k, v in custom_params.items()]
        parts.append(der.explicit(0, der.set_of(params)))
    if data_size is not None:
        parts.append(ALG_HKDF_EXPLICIT)
        parts.append(der.explicit(2, footer_info(data_size)))
    if padded:
        parts.append(ALG_PADDING_EXPLICIT)
    return der.sequence(*parts)


def commitment_placeholder_entry() -> bytes:
    """The encoded custom param that carries an all-zero commitment (filled in afterwards)."""
    return _custom_param(COMMITMENT_PARAM, bytes(COMMITMENT_LENGTH))


# --- parsing ----------------------------------------------------------------------------------


def _parse_recipient(data: bytes, start: int, stop: int, what: str) -> tuple[bytes, bytes]:
    r = DerReader(data, start, stop)
    r.expect(_RECIPIENT_PREFIX, what)
    rid = r.enter(0xA0, what)
    key_id = rid.octets(what)
    rid.finish(what)
    if len(key_id) not in KEY_ID_LENGTHS:
        raise MalformedInputError(f"{what}: key id of unexpected length {len(key_id)}")
    if data[r.pos : r.pos + len(ALG_ED25519_NULL)] == ALG_ED25519_NULL:
        r.pos += len(ALG_ED25519_NULL)
    else:
        r.expect(ALG_ED25519, f"{what} (only Ed25519 recipients are supported)")
    envelope = r.octets(f"{what}: encrypted key")
    r.finish(what)
    if len(envelope) not in (ENVELOPE_LENGTH, ENVELOPE_LENGTH_GCM):
        raise MalformedInputError(f"{what}: encrypted key is not an Ed25519 ECIES envelope")
    return key_id, envelope


def _rid_of(buf: bytes, start: int) -> bytes | None:
    """The key id of the recipient entry whose content starts at `start` (quick look only)."""
    head = buf[start : start + 7]  # 02 01 02 | a0 n+2 | 04 n
    if len(head) == 7 and head[:4] == b"\x02\x01\x02\xa0" and head[5] == 0x04:
        n = head[6]
        if head[4] == n + 2:
            return bytes(buf[start + 7 : start + 7 + n])
    return None


def _parse_custom_params(r: DerReader) -> tuple[dict[str, CustomValue], int | None]:
    what = "message info custom params"
    params: dict[str, CustomValue] = {}
    commitment_offset: int | None = None
    outer = r.enter(0xA0, what)
    items = outer.enter(der.TAG_SET, what)
    outer.finish(what)
    if items.at_end():
        raise MalformedInputError(f"{what}: empty set")
    while not items.at_end():
        kv = items.enter(der.TAG_SEQUENCE, what)
        key = kv.utf8(what)
        if key not in KNOWN_PARAMS:
            # Strict: E3Kit writes no others, and accepting unknown names would let a changed
            # name (one flipped bit) hide our key commitment.
            raise MalformedInputError(f"{what}: unknown custom param {key!r}")
        if key in params:
            raise MalformedInputError(f"{what}: duplicate key {key!r}")
        tag = kv.peek_tag()
        value_reader = kv.enter(tag if tag in (0xA0, 0xA1, 0xA2) else -1, f"{what} value")
        value: CustomValue
        if tag == 0xA0:
            value = value_reader.integer(what, max_bytes=16)
        elif tag == 0xA1:
            value = value_reader.utf8(what)
        else:
            value = value_reader.octets(what)
            if key == COMMITMENT_PARAM:
                if len(value) != COMMITMENT_LENGTH:
                    raise MalformedInputError(f"{what}: key commitment of bad length")
                # the message info starts at offset 0 of the message
                commitment_offset = value_reader.pos - COMMITMENT_LENGTH
        value_reader.finish(what)
        kv.finish(what)
        if key == COMMITMENT_PARAM and commitment_offset is None:
            raise MalformedInputError(f"{what}: key commitment is not an OCTET STRING")
        params[key] = value
    return params, commitment_offset


def _all_recipients(reader: DerReader, what: str) -> tuple[list[tuple[bytes, bytes]], int]:
    """Decode and check every recipient entry."""
    found: list[tuple[bytes, bytes]] = []
    while not reader.at_end():
        tag, s, e = reader.read_any(what)
        if tag != der.TAG_SEQUENCE:
            raise MalformedInputError(f"{what}: only key recipients are supported")
        found.append(_parse_recipient(reader.buf, s, e, what))
    if not found:
        raise MalformedInputError(f"{what}: no recipients")
    return found, len(found)


def _rid_pattern(key_id: bytes) -> bytes:
    return b"\x02\x01\x02\xa0" + bytes((len(key_id) + 2, 0x04, len(key_id))) + key_id


def _find_recipient(
    reader: DerReader, key_ids: Collection[bytes], what: str
) -> tuple[list[tuple[bytes, bytes]], int]:
    """Find and decode the first entry for one of `key_ids`; the others are only framed.

    Fast path (every writer we know emits entries of one size): when all entries have the size
    of the first, the DER framing of all of them is checked with a few slice comparisons and our
    entry is located with a substring search, so the cost does not grow with the number of
    recipients. Otherwise every entry's tag and length are walked.
    """
    buf, start, end = reader.buf, reader.pos, reader.end
    tag, s, e = reader.read_any(what)  # the first entry: checks tag and canonical length
    if tag != der.TAG_SEQUENCE:
        raise MalformedInputError(f"{what}: only key recipients are supported")
    stride = e - start
    head = s - start
    total = end - start
    if total % stride == 0:
        count = total // stride
        first = buf[start:s]
        framed = all(buf[start + i : end : stride] == first[i : i + 1] * count for i in range(head))
        if framed:
            for key_id in key_ids:
                pattern = _rid_pattern(key_id)
                at = buf.find(pattern, start, end)
                while at != -1:
                    entry = at - head
                    if (entry - start) % stride == 0:
                        return [_parse_recipient(buf, at, entry + stride, what)], count
                    at = buf.find(pattern, at + 1, end)
            return [], count
    # Mixed sizes: walk every entry.
    reader.pos = start
    found: list[tuple[bytes, bytes]] = []
    count = 0
    wanted = set(key_ids)
    while not reader.at_end():
        tag, s, e = reader.read_any(what)
        if tag != der.TAG_SEQUENCE:
            raise MalformedInputError(f"{what}: only key recipients are supported")
        count += 1
        if not found and _rid_of(buf, s) in wanted:
            found.append(_parse_recipient(buf, s, e, what))
    return found, count


def parse_message_info(data: bytes, key_ids: Collection[bytes] | None = None) -> MessageInfo:
    """Parse the message info at the start of `data` (the whole message).

    With `key_ids`, only recipient entries with one of those ids are decoded (the first match);
    the others are skipped after a DER length check. Without, every entry is decoded and checked.
    """
    what = "message info"
    top = DerReader(data)
    start, stop = top.read(der.TAG_SEQUENCE, what)
    r = DerReader(data, start, stop)
    version = r.integer(f"{what} version", max_bytes=1)
    if version not in (VERSION_PLAIN, VERSION_KDF, VERSION_PADDED):
        raise MalformedInputError(f"{what}: unsupported version {version}")

    ci = r.enter(der.TAG_SEQUENCE, f"{what} content info")
    ci.expect(OID_ENVELOPED_DATA, f"{what}: content type is not envelopedData")
    env_outer = ci.enter(0xA0, f"{what} enveloped data")
    ci.finish(f"{what} content info")
    env = env_outer.enter(der.TAG_SEQUENCE, f"{what} enveloped data")
    env_outer.finish(f"{what} enveloped data")
    env.expect(b"\x02\x01\x02", f"{what}: enveloped data version")
    recipients_reader = env.enter(der.TAG_SET, f"{what} recipients")
    env.expect(ENCRYPTED_CONTENT_PREFIX, f"{what}: content encryption is not AES-256-GCM")
    if env.pos + NONCE_LENGTH > env.end:
        raise MalformedInputError(f"{what}: truncated nonce")
    nonce = bytes(data[env.pos : env.pos + NONCE_LENGTH])
    env.pos += NONCE_LENGTH
    env.finish(f"{what} enveloped data")

    rwhat = f"{what} recipient"
    if key_ids is None:
        found, count = _all_recipients(recipients_reader, rwhat)
    else:
        found, count = _find_recipient(recipients_reader, key_ids, rwhat)

    custom_params: dict[str, CustomValue] = {}
    commitment_offset = None
    if r.peek_tag() == 0xA0:
        custom_params, commitment_offset = _parse_custom_params(r)
    has_kdf = r.peek_tag() == 0xA1
    if has_kdf:
        r.expect(ALG_HKDF_EXPLICIT, f"{what}: cipher KDF is not HKDF-SHA512")
    data_size = None
    if r.peek_tag() == 0xA2:
        fo = r.enter(0xA2, f"{what} footer info")
        fi = fo.enter(der.TAG_SEQUENCE, f"{what} footer info")
        fo.finish(f"{what} footer info")
        fi.expect(b"\x02\x01\x00", f"{what}: footer info version")
        data_size = fi.integer(f"{what} data size", max_bytes=6)
        if data_size > _MAX_DATA_SIZE:
            raise MalformedInputError(f"{what}: data size too large")
        fi.expect(der.explicit(0, SIGNED_DATA_INFO), f"{what}: signed data info is not SHA-512")
        fi.finish(f"{what} footer info")
    padded = r.peek_tag() == 0xA3
    if padded:
        r.expect(ALG_PADDING_EXPLICIT, f"{what}: unknown padding algorithm")
    r.finish(what)

    if has_kdf != (data_size is not None):
        raise MalformedInputError(f"{what}: cipher KDF and footer info must come together")
    expected_version = VERSION_PADDED if padded else (VERSION_KDF if has_kdf else VERSION_PLAIN)
    if version != expected_version:
        raise MalformedInputError(f"{what}: version {version} does not match its fields")
    return MessageInfo(
        version=version,
        length=stop,
        nonce=nonce,
        recipients=tuple(found),
        recipient_count=count,
        custom_params=custom_params,
        has_kdf=has_kdf,
        data_size=data_size,
        padded=padded,
        commitment_offset=commitment_offset,
    )
