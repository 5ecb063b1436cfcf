"""Virgil's random padding (`vscf_random_padding`, OID 1.3.6.1.4.1.54811.1.3).

    padded = data || random bytes (n) || n as uint32 little-endian

with the total rounded up to a multiple of the frame (160 bytes, Virgil's default, which E3Kit
uses), so that message sizes reveal only a range. The frame is not recorded in the message, so
the reader only requires a consistent length field.
"""

from __future__ import annotations

import os

from twilio_e2ee.errors import MalformedInputError

__all__ = ["PADDING_FRAME", "pad", "padded_length", "unpad"]

PADDING_FRAME = 160
_LENGTH_FIELD = 4


def padded_length(size: int, frame: int = PADDING_FRAME) -> int:
    """Length of `size` bytes of data once padded."""
    return -(-(size + _LENGTH_FIELD) // frame) * frame


def pad(data: bytes, frame: int = PADDING_FRAME) -> bytes:
    """Pad `data` with random bytes to a multiple of `frame`."""
    n = padded_length(len(data), frame) - len(data) - _LENGTH_FIELD
    return b"".join((data, os.urandom(n), n.to_bytes(_LENGTH_FIELD, "little")))


def unpad(padded: bytes) -> bytes:
    """Strip Virgil's random padding; MalformedInputError if the length field is inconsistent."""
    if len(padded) < _LENGTH_FIELD:
        raise MalformedInputError("padded data shorter than its length field")
    n = int.from_bytes(padded[-_LENGTH_FIELD:], "little")
    if n > len(padded) - _LENGTH_FIELD:
        raise MalformedInputError("padding length exceeds the data")
    return padded[: len(padded) - _LENGTH_FIELD - n]
