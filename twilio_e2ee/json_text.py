"""JSON whose strings are text: :func:`loads` also refuses lone UTF-16 surrogates.

``json.loads('"\\ud800"')`` returns a str that no UTF-8 encoder, SQLite database, hash or
signature input can carry, so such input fails late and with the wrong error; ``json.loads`` of
bytes even lets an encoded surrogate (``ED A0 80``) through. :func:`loads` refuses both up front
with a ``ValueError``, as :func:`json.loads` does for any other malformed JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["loads"]

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads(data: str | bytes | bytearray, **kwargs: Any) -> Any:
    """:func:`json.loads` that raises ValueError when a string holds a lone surrogate."""
    if isinstance(data, (bytes, bytearray)):
        # As json.loads does (UTF-8/16/32), but strict: an encoded surrogate is a decode error.
        data = bytes(data).decode(json.detect_encoding(data))
    elif not data.isascii():
        data.encode("utf-8")  # a str may hold raw surrogates: UnicodeEncodeError (a ValueError)
    value = json.loads(data, **kwargs)
    if _SURROGATE_ESCAPE.search(data):  # rare: check that every escape pairs up
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value
