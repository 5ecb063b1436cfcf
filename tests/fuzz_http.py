"""Shared pieces of the HTTP fuzz tests (``tests/test_fuzz_http_*.py``).

Requests go to the servers' ASGI apps in-process (Starlette's ``TestClient``, no sockets) with
``raise_server_exceptions=False``: an exception that escapes an app becomes a plain 500, which
the properties then reject like any other 5xx.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "GARBAGE_BYTES",
    "NOT_UTF8",
    "FuzzRequest",
    "fuzz_settings",
    "json_body",
    "json_values",
    "segment",
    "short_text",
    "weighted",
]


def fuzz_settings(examples: int) -> settings:
    """``examples`` requests per run (``FUZZ_HTTP_EXAMPLES=5000`` overrides it for a long hunt).

    deadline=None: the first request of a run pays for imports and the spec validator's setup.
    """
    return settings(
        max_examples=int(os.environ.get("FUZZ_HTTP_EXAMPLES", str(examples))),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


NOT_UTF8 = b"\xff\xfe\xc3\x28 \xa0\xa1 \xed\xa0\x80"  # invalid starts, truncated, surrogate

short_text = st.text(max_size=40)

# One path segment, percent-encoded (the server decodes it: control characters, %2F, non-ASCII).
segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40
).map(lambda s: quote(s, safe=""))

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | short_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(short_text, inner, max_size=4),
    max_leaves=12,
)

GARBAGE_BYTES = st.binary(max_size=200) | st.just(NOT_UTF8)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn ``weight`` times as often (``one_of`` is uniform)."""
    indices = [i for i, (weight, _) in enumerate(choices) for _ in range(weight)]
    return st.sampled_from(indices).flatmap(lambda i: choices[i][1])


def json_body(value: Any) -> bytes:
    """``value`` as UTF-8 JSON text (big integers and odd floats included)."""
    return json.dumps(value).encode("utf-8")


class FuzzRequest:
    """One generated request (a plain class: Hypothesis prints it with this short ``repr``)."""

    def __init__(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        content: bytes,
        *,
        query: str = "",
        form: list[tuple[str, str]] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.content = content
        self.query = query
        self.form = form or []

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")

    def __repr__(self) -> str:  # bodies can be 1 MiB: show the start and the size
        body = self.content if len(self.content) <= 300 else self.content[:300] + b"..."
        size = len(self.content)
        return f"FuzzRequest({self.method} {self.target} {self.headers} [{size}] {body!r})"
