"""JSON whose strings are text: :func:`loads` also refuses lone UTF-16 surrogate escapes.

``json.loads('"\\ud800"')`` returns a str that no UTF-8 encoder, SQLite database, hash or
signature input can carry, so such input fails late and with the wrong error. Parsing with
:func:`loads` refuses it up front with a ``ValueError`` (as :func:`json.loads` does for any other
malformed JSON).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["loads"]

_ESCAPE_STR = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """:func:`json.loads` that raises ValueError when a string holds a lone surrogate."""
    value = json.loads(data, **kwargs)
    pattern = _ESCAPE_STR if isinstance(data, str) else _ESCAPE_BYTES
    if pattern.search(data):  # type: ignore[arg-type]  # rare: check every escape pairs up
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError: ValueError
    return value
