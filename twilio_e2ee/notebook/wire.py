"""What a service sees: rows built from a mock's request journal, and a widget that shows them.

The rows come from :class:`mock_services.journal.Journal` (what the mock actually received), never
from prints in the client, so the "what Twilio sees" column cannot lie about what was sent.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from twilio_e2ee.notebook._base import NotebookError, ViewRegistry, widget_bundle

if TYPE_CHECKING:
    from mock_services.journal import Journal, JournalEntry

__all__ = ["WireRow", "WireView", "message_row", "wire_rows"]

_MESSAGES_PATH = re.compile(r"/Conversations/(?P<sid>CH[0-9a-f]{32})/Messages/?$")


@dataclass(frozen=True)
class WireRow:
    """One message as the service stored it: who, which conversation, the body, the attributes."""

    author: str
    conversation_sid: str
    body: str
    attributes: str
    status: int

    def __str__(self) -> str:
        return f"{self.author}: {self.body}"


def message_row(entry: JournalEntry) -> WireRow | None:
    """A :class:`WireRow` if `entry` is a message posted to a conversation, else None."""
    if entry.method != "POST":
        return None
    match = _MESSAGES_PATH.search(entry.path)
    if match is None:
        return None
    form: dict[str, Any] = entry.request if isinstance(entry.request, dict) else {}
    author = str(form.get("Author") or entry.identity or "system")
    attributes = form.get("Attributes", "")
    if not isinstance(attributes, str):  # the mock may journal them parsed
        attributes = json.dumps(attributes, separators=(",", ":"), ensure_ascii=False)
    return WireRow(
        author=author,
        conversation_sid=match["sid"],
        body=str(form.get("Body", "")),
        attributes=attributes,
        status=entry.status,
    )


def wire_rows(journal: Journal, conversation_sid: str | None = None) -> list[WireRow]:
    """The messages `journal` recorded so far (of one conversation if given), oldest first.

    A snapshot: unlike :class:`WireView` it does not listen to the journal, so nothing needs
    closing afterwards.
    """
    _check_journal(journal)
    return [row for e in journal.entries if (row := _row_in(e, conversation_sid)) is not None]


def _row_in(entry: JournalEntry, conversation_sid: str | None) -> WireRow | None:
    row = message_row(entry)
    if row is None or (conversation_sid and row.conversation_sid != conversation_sid):
        return None
    return row


def _check_journal(journal: Any) -> None:
    if not callable(getattr(journal, "subscribe", None)) or not hasattr(journal, "entries"):
        raise NotebookError(
            f"expected a request journal (services.twilio_journal), not {type(journal).__name__}"
        )


_views = ViewRegistry()


def _cut(text: str, keep: int) -> str:
    return text if len(text) <= keep else f"{text[:keep]}… ({len(text)} chars)"


class WireView:
    """A live list of the messages a mock Twilio received, fed by its journal.

    ``rows`` is the data (what tests assert on); ``widget`` renders it. Entries recorded before
    the view was created are included. :meth:`close` stops listening to the journal. A new view
    with the same `name` closes the older one, so re-running the cell that creates a view leaves
    one listener, not one more each time; give each view shown at the same time its own name.
    ``name=None`` makes a view that only :meth:`close` stops (as the chat workbench's own).
    """

    def __init__(
        self,
        journal: Journal,
        *,
        title: str = "What Twilio sees",
        conversation_sid: str | None = None,
        keep: int = 72,
        name: str | None = "wire",
    ) -> None:
        _check_journal(journal)
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise NotebookError(f"keep must be a positive number of characters, not {keep!r}")
        self.journal = journal
        self.conversation_sid = conversation_sid
        self.keep = keep
        self.name = name
        self.title = title
        self._lock = threading.Lock()
        self._rows: list[WireRow] = []
        self._early: list[JournalEntry] | None = []  # delivered while the snapshot is taken
        self.header = w.HTML(value="")
        self.body = w.HTML(value="")
        self.widget = w.VBox([self.header, self.body])
        self.widget.add_class("e2ee-wire")
        # Subscribe first, then read what came before, so no entry falls in between (nor twice).
        self._unsubscribe: Callable[[], None] | None = journal.subscribe(self._on_entry)
        entries = journal.entries
        with self._lock:
            known = {id(entry) for entry in entries}
            early = [entry for entry in self._early or () if id(entry) not in known]
            self._early = None
        for entry in [*entries, *early]:
            self._add(entry)
        self.render()
        if name is not None:
            _views.register(name, self)

    @property
    def rows(self) -> list[WireRow]:
        """Messages seen so far, oldest first."""
        with self._lock:
            return list(self._rows)

    def _add(self, entry: JournalEntry) -> bool:
        row = _row_in(entry, self.conversation_sid)
        if row is None:
            return False
        with self._lock:
            self._rows.append(row)
        return True

    @property
    def closed(self) -> bool:
        """Whether the view has stopped following the journal."""
        return self._unsubscribe is None

    def _on_entry(self, entry: JournalEntry) -> None:
        # Runs on the server's thread: never raise into the mock, never print.
        with self._lock:
            if self._early is not None:
                self._early.append(entry)
                return
        if self.closed:
            return
        try:
            if self._add(entry):
                self.render()
        except Exception:  # pragma: no cover - a display problem must not break the service
            return

    def render(self) -> None:
        """Refresh the HTML from `rows`."""
        note = " <i>(closed: no longer updated)</i>" if self.closed else ""
        self.header.value = f"<b>{html.escape(self.title)}</b>{note}"
        items = []
        for row in self.rows:
            attrs = ""
            if row.attributes and row.attributes != "{}":
                attrs = f"<br><i>attributes</i> {html.escape(_cut(row.attributes, self.keep))}"
            items.append(
                "<div style='font-family:monospace;font-size:11px;line-height:1.3;"
                "margin:2px 0 6px 0;word-break:break-all'>"
                f"<b>{html.escape(row.author)}</b> → <code>"
                f"{html.escape(_cut(row.body, self.keep))}</code>{attrs}</div>"
            )
        self.body.value = "".join(items) or "<i>nothing yet</i>"

    def as_text(self) -> str:
        """A plain-text rendering, one line per message."""
        return "\n".join(f"{r.author}: {_cut(r.body, self.keep)}" for r in self.rows)

    def close(self) -> None:
        """Stop listening to the journal (idempotent); the widget keeps its last rows."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is None:
            return
        unsubscribe()
        if self.name is not None:
            _views.forget(self.name, self)
        self.render()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return widget_bundle(self.widget, f"WireView({self.name!r})", **kwargs)
