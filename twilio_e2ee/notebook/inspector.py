"""A key and card inspector: pick an item, see its fields (never a secret)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as w

from twilio_e2ee.notebook._base import NotebookError, widget_bundle
from twilio_e2ee.notebook.display import describe, render_html

__all__ = ["Inspector"]


class Inspector:
    """A dropdown of named keys/cards and a table of the selected one's fields.

    ``rows`` (a list of (field, value) strings) is what the table shows; tests set
    ``selector.value`` and read it.
    """

    def __init__(self, items: Mapping[str, Any] | None = None, *, title: str = "Inspector"):
        self._items: dict[str, Any] = {}
        self.selector = w.Dropdown(options=[], description="item")
        self.details = w.HTML(value="")
        self.widget = w.VBox([w.HTML(f"<b>{html.escape(title)}</b>"), self.selector, self.details])
        self.widget.add_class("e2ee-inspector")
        self.title = ""
        self.rows: list[tuple[str, str]] = []
        self.selector.observe(lambda _change: self._show(), names="value")
        if items is not None and not isinstance(items, Mapping):
            raise NotebookError(f"items must be a mapping of name -> key or card, not {items!r}")
        for name, item in (items or {}).items():
            self.add(name, item)

    def add(self, name: str, item: Any) -> None:
        """Add (or replace) an item; it must be a key, key pair or card of the package."""
        if not isinstance(name, str) or not name:
            raise NotebookError(f"an inspector item needs a non-empty str name, not {name!r}")
        if describe(item) is None:
            raise NotebookError(
                f"cannot inspect {type(item).__name__}: not a key, card, message or safety number"
            )
        self._items[name] = item
        self.selector.options = list(self._items)
        self.selector.value = name
        self._show()

    @property
    def names(self) -> list[str]:
        return list(self._items)

    def _show(self) -> None:
        name = self.selector.value
        if name is None or name not in self._items:
            self.title, self.rows, self.details.value = "", [], ""
            return
        item = self._items[name]
        described = describe(item)
        assert described is not None  # checked in add()
        self.title = described[0]
        self.rows = [(field, str(value)) for field, value in described[1]]
        self.details.value = render_html(item) or ""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return widget_bundle(self.widget, "Inspector()", **kwargs)
