"""A strict, minimal DER (ITU-T X.690) codec for Virgil's message structures.

Hand-written because `cryptography` has no general ASN.1/DER API (it only parses whole keys and
certificates). Only what Virgil's messages use is supported: single-byte tags, definite lengths
up to 4 length bytes, non-negative INTEGERs, OCTET STRING, UTF8String, and constructed types.

The reader is strict: lengths must be minimal (canonical DER), INTEGERs minimally encoded and
non-negative, nothing may run past its parent, and callers check that every structure is consumed
exactly (no trailing bytes). Every failure raises :class:`MalformedInputError`.
"""

from __future__ import annotations

from collections.abc import Iterable

from twilio_e2ee.errors import MalformedInputError

__all__ = [
    "DerReader",
    "encode_length",
    "explicit",
    "integer",
    "octet_string",
    "sequence",
    "set_of",
    "tlv",
    "utf8_string",
]

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_UTF8_STRING = 0x0C
TAG_SEQUENCE = 0x30
TAG_SET = 0x31

MAX_LENGTH_BYTES = 4


# --- encoding ---------------------------------------------------------------------------------


def encode_length(n: int) -> bytes:
    """DER definite length octets for a content length `n`."""
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element: tag, length, content."""
    return bytes((tag,)) + encode_length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    """SEQUENCE of already-encoded elements."""
    return tlv(TAG_SEQUENCE, b"".join(parts))


def set_of(parts: Iterable[bytes]) -> bytes:
    """SET OF already-encoded elements, sorted by their encodings as DER requires."""
    return tlv(TAG_SET, b"".join(sorted(parts)))


def explicit(number: int, content: bytes) -> bytes:
    """[number] EXPLICIT (context-specific, constructed) around encoded content."""
    return tlv(0xA0 | number, content)


def integer(value: int) -> bytes:
    """A non-negative INTEGER, minimally encoded."""
    if value < 0:
        raise ValueError("negative INTEGER not supported")
    return tlv(TAG_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def octet_string(value: bytes) -> bytes:
    """OCTET STRING."""
    return tlv(TAG_OCTET_STRING, value)


def utf8_string(value: str) -> bytes:
    """UTF8String."""
    return tlv(TAG_UTF8_STRING, value.encode("utf-8"))


# --- decoding ---------------------------------------------------------------------------------


class DerReader:
    """Reads consecutive DER elements of ``buf[pos:end]``; any problem is MalformedInputError."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def at_end(self) -> bool:
        """True when every element has been read."""
        return self.pos >= self.end

    def peek_tag(self) -> int | None:
        """The tag of the next element, or None at the end."""
        return self.buf[self.pos] if self.pos < self.end else None

    def read_any(self, what: str) -> tuple[int, int, int]:
        """Read the next element of any tag; return (tag, content_start, content_end)."""
        buf, pos, end = self.buf, self.pos, self.end
        if pos + 2 > end:
            raise MalformedInputError(f"{what}: truncated DER element")
        tag = buf[pos]
        if tag & 0x1F == 0x1F:
            raise MalformedInputError(f"{what}: multi-byte DER tags are not used here")
        first = buf[pos + 1]
        start = pos + 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0:
                raise MalformedInputError(f"{what}: indefinite length is not DER")
            if count > MAX_LENGTH_BYTES or start + count > end:
                raise MalformedInputError(f"{what}: bad DER length")
            length = int.from_bytes(buf[start : start + count], "big")
            if length < 0x80 or buf[start] == 0:
                raise MalformedInputError(f"{what}: non-minimal DER length")
            start += count
        stop = start + length
        if stop > end:
            raise MalformedInputError(f"{what}: DER element runs past its container")
        self.pos = stop
        return tag, start, stop

    def read(self, tag: int, what: str) -> tuple[int, int]:
        """Read the next element, which must carry `tag`; return its content bounds."""
        got, start, stop = self.read_any(what)
        if got != tag:
            raise MalformedInputError(f"{what}: expected DER tag 0x{tag:02x}, got 0x{got:02x}")
        return start, stop

    def enter(self, tag: int, what: str) -> DerReader:
        """Read a constructed element and return a reader over its content."""
        start, stop = self.read(tag, what)
        return DerReader(self.buf, start, stop)

    def integer(self, what: str, max_bytes: int = 8) -> int:
        """A non-negative, minimally encoded INTEGER of at most `max_bytes` content bytes."""
        start, stop = self.read(TAG_INTEGER, what)
        n = stop - start
        if n == 0 or n > max_bytes + 1:
            raise MalformedInputError(f"{what}: INTEGER of bad size")
        first = self.buf[start]
        if first & 0x80:
            raise MalformedInputError(f"{what}: negative INTEGER")
        if n > 1 and first == 0 and not self.buf[start + 1] & 0x80:
            raise MalformedInputError(f"{what}: non-minimal INTEGER")
        if n == max_bytes + 1 and first != 0:
            raise MalformedInputError(f"{what}: INTEGER too large")
        return int.from_bytes(self.buf[start:stop], "big")

    def octets(self, what: str, size: int | None = None) -> bytes:
        """An OCTET STRING (of exactly `size` bytes when given)."""
        start, stop = self.read(TAG_OCTET_STRING, what)
        if size is not None and stop - start != size:
            raise MalformedInputError(f"{what}: expected {size} bytes, got {stop - start}")
        return bytes(self.buf[start:stop])

    def utf8(self, what: str) -> str:
        """A UTF8String."""
        start, stop = self.read(TAG_UTF8_STRING, what)
        try:
            return bytes(self.buf[start:stop]).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInputError(f"{what}: invalid UTF-8") from None

    def expect(self, constant: bytes, what: str) -> None:
        """The next bytes must be exactly `constant` (a fixed, pre-encoded element)."""
        stop = self.pos + len(constant)
        if stop > self.end or self.buf[self.pos : stop] != constant:
            raise MalformedInputError(f"{what}: unexpected algorithm or structure")
        self.pos = stop

    def finish(self, what: str) -> None:
        """Require that the whole content was consumed."""
        if self.pos != self.end:
            raise MalformedInputError(f"{what}: unexpected trailing data")
