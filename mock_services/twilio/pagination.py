"""Twilio's list pagination: ``{"<key>": [...], "meta": {page, page_size, first_page_url,
previous_page_url, url, next_page_url, key}}`` with ``PageToken=PT<key>`` tokens.

A token names the first item of the page it leads to (the message ``index`` for messages, the SID
otherwise), as in Twilio's own URLs (``…/Messages?PageSize=50&Page=1&PageToken=PT50``). Pages
follow the list order (``Order=desc`` reverses it); a token naming a deleted item still resolves to
its position, so concurrent deletes never make a client skip or repeat items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from mock_services.twilio.errors import bad_request
from mock_services.twilio.store import Record

__all__ = ["PageRequest", "paginate"]


@dataclass(frozen=True)
class PageRequest:
    """The paging parameters of a list request."""

    page: int
    page_size: int
    token: str | None
    filters: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(
        cls,
        query: dict[str, list[str]],
        *,
        default_size: int,
        max_size: int,
        filters: Sequence[str] = (),
    ) -> PageRequest:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        try:
            size = int(one("PageSize") or default_size)
            page = int(one("Page") or 0)
        except ValueError:
            raise bad_request("PageSize and Page must be integers") from None
        if size < 1 or page < 0:
            raise bad_request("PageSize must be at least 1 and Page not negative")
        token = one("PageToken")
        if token is not None and (not token.startswith("PT") or len(token) < 3):
            raise bad_request(f"Invalid PageToken {token!r}")
        kept = tuple((name, v) for name in filters if (v := one(name)) is not None)
        return cls(page=page, page_size=min(size, max_size), token=token, filters=kept)

    def url(self, base: str, page: int, token: str | None) -> str:
        params: list[tuple[str, str]] = [*self.filters]
        params += [("PageSize", str(self.page_size)), ("Page", str(page))]
        if token is not None:
            params.append(("PageToken", token))
        return f"{base}?{urlencode(params)}"


def paginate(
    items: Sequence[tuple[int, Record]],
    request: PageRequest,
    *,
    key: str,
    list_url: str,
    render: Callable[[Record], dict[str, Any]],
    token_of: Callable[[int, Record], str],
    resolve: Callable[[str], int | None],
    descending: bool = False,
) -> dict[str, Any]:
    """One page of ``items`` (``(ord, record)`` in ascending list order) as Twilio renders it."""
    ordered = list(reversed(items)) if descending else list(items)
    if request.token is None:
        start = request.page * request.page_size
    else:
        position = resolve(request.token[2:])
        if position is None:
            raise bad_request(f"Invalid PageToken {request.token!r}")
        start = next(
            (
                i
                for i, (o, _) in enumerate(ordered)
                if (o <= position if descending else o >= position)
            ),
            len(ordered),
        )
    chunk = ordered[start : start + request.page_size]
    end = start + len(chunk)
    next_url = None
    if end < len(ordered):
        o, rec = ordered[end]
        next_url = request.url(list_url, request.page + 1, "PT" + token_of(o, rec))
    previous_url = None
    if start > 0 and ordered:  # past the end, "previous" is the last page_size items
        first = max(0, min(start, len(ordered)) - request.page_size)
        o, rec = ordered[first]
        previous_url = request.url(list_url, max(0, request.page - 1), "PT" + token_of(o, rec))
    return {
        key: [render(rec) for _, rec in chunk],
        "meta": {
            "page": request.page,
            "page_size": request.page_size,
            "first_page_url": request.url(list_url, 0, None),
            "previous_page_url": previous_url,
            "url": request.url(list_url, request.page, request.token),
            "next_page_url": next_url,
            "key": key,
        },
    }
