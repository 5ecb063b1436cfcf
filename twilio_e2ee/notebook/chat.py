"""The chat workbench: two or more users side by side, and what Twilio sees beside them.

The widget renders package objects; the state (each user's transcript, the wire rows) is plain
data that tests and ``assert`` cells read. It runs headless: set ``inputs[name].value`` and call
``send_buttons[name].click()``, exactly what the browser does.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import ipywidgets as w

from twilio_e2ee.errors import E2EEError
from twilio_e2ee.notebook._base import NotebookError, ViewRegistry, widget_bundle
from twilio_e2ee.notebook.wire import WireView

if TYPE_CHECKING:
    from mock_services.journal import Journal

__all__ = ["ChatLine", "ChatParticipant", "ChatWorkbench"]


@dataclass(frozen=True)
class ChatLine:
    """One message as a participant sees it: decrypted text, or why it could not be read."""

    author: str
    text: str
    ok: bool = True

    def __str__(self) -> str:
        return f"{self.author}: {self.text}" if self.ok else f"{self.author}: ⚠ {self.text}"


_PARTICIPANT_API = ("identity", "send", "receive")


class ChatParticipant(Protocol):
    """What the workbench needs from one user's side of a conversation."""

    @property
    def identity(self) -> str: ...

    def send(self, text: str) -> None:
        """Post `text` to the conversation (encrypted or not, as the participant does it)."""

    def receive(self) -> list[ChatLine]:
        """Messages that arrived since the last call, oldest first."""


_workbenches = ViewRegistry()


class ChatWorkbench:
    """Chat columns for each participant plus a "what Twilio sees" column from the journal.

    Creating a workbench with the same `name` as an earlier one closes the earlier one, so
    re-running a notebook cell leaves one live view (give workbenches shown at the same time
    different names).
    """

    def __init__(
        self,
        participants: Sequence[ChatParticipant],
        *,
        journal: Journal | None = None,
        conversation_sid: str | None = None,
        name: str = "chat",
        title: str = "Chat",
    ) -> None:
        if isinstance(participants, str | bytes) or not participants:
            raise NotebookError("a chat workbench needs a list of at least one participant")
        missing = [p for p in participants if not all(hasattr(p, a) for a in _PARTICIPANT_API)]
        if missing:
            raise NotebookError(
                f"participants need identity, send() and receive(), as EncryptedParticipant "
                f"has; got {type(missing[0]).__name__}"
            )
        identities = [p.identity for p in participants]
        if len(set(identities)) != len(identities):
            raise NotebookError(f"participants must have distinct identities, got {identities}")
        self.name = name
        self.participants = {p.identity: p for p in participants}
        self._lines: dict[str, list[ChatLine]] = {i: [] for i in identities}
        self.errors: list[str] = []
        self.inputs: dict[str, Any] = {}
        self.send_buttons: dict[str, Any] = {}
        self._panes: dict[str, Any] = {}
        columns = [self._column(i) for i in identities]
        self.wire = (
            WireView(journal, conversation_sid=conversation_sid, name=None)
            if journal is not None
            else None
        )
        if self.wire is not None:
            self.wire.widget.layout = w.Layout(
                flex="1.2 1 0", min_width="260px", padding="4px 8px", border="1px dashed #b00"
            )
            columns.append(self.wire.widget)
        self.refresh_button = w.Button(
            description="Refresh", icon="refresh", tooltip="fetch new messages for every user"
        )
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.status = w.HTML(value="")
        self.closed = False
        self.widget = w.VBox(
            [
                w.HBox(
                    [w.HTML(f"<h4>{html.escape(title)}</h4>"), self.refresh_button],
                    layout=w.Layout(align_items="center", justify_content="space-between"),
                ),
                w.HBox(columns, layout=w.Layout(width="100%", align_items="stretch")),
                self.status,
            ]
        )
        self.widget.add_class("e2ee-chat")
        self._render()
        _workbenches.register(name, self)

    def _column(self, identity: str) -> Any:
        pane = w.HTML(
            value="", layout=w.Layout(flex="1 1 auto", max_height="360px", overflow="auto")
        )
        text = w.Text(
            placeholder=f"message from {identity}",
            continuous_update=False,
            layout=w.Layout(flex="1 1 auto", width="auto"),
        )
        button = w.Button(description="Send", button_style="primary", layout=w.Layout(width="72px"))
        button.on_click(lambda _b, who=identity: self._on_send(who))
        self._panes[identity] = pane
        self.inputs[identity] = text
        self.send_buttons[identity] = button
        column = w.VBox(
            [w.HTML(f"<b>{html.escape(identity)}</b>"), pane, w.HBox([text, button])],
            layout=w.Layout(
                flex="1 1 0", min_width="220px", border="1px solid #ddd", padding="4px 8px"
            ),
        )
        column.add_class(f"e2ee-user-{identity}")
        return column

    def _known(self, identity: str) -> str:
        if identity not in self.participants:
            raise NotebookError(
                f"{identity!r} is not in this workbench; its users are {list(self.participants)}"
            )
        return identity

    def transcript(self, identity: str) -> list[ChatLine]:
        """Everything `identity` has seen so far (decrypted), oldest first."""
        return list(self._lines[self._known(identity)])

    def send(self, identity: str, text: str) -> None:
        """Send `text` as `identity`, then refresh every column (raises on failure)."""
        if not isinstance(text, str) or not text:
            raise NotebookError("the message must be a non-empty str")
        if self.closed:
            raise NotebookError(f"workbench {self.name!r} is closed; use the newer one")
        self.participants[self._known(identity)].send(text)
        self.refresh()

    def _on_send(self, identity: str) -> None:
        text = self.inputs[identity].value
        if not text:
            return
        try:
            self.send(identity, text)
        except E2EEError as exc:
            self._report(f"{identity} could not send: {exc}")
            return
        self.inputs[identity].value = ""

    def refresh(self) -> None:
        """Fetch new messages for every participant and redraw."""
        for identity, participant in self.participants.items():
            try:
                self._lines[identity].extend(participant.receive())
            except E2EEError as exc:
                self._report(f"{identity} could not receive: {exc}")
        self._render()

    def _report(self, message: str) -> None:
        self.errors.append(message)
        self.status.value = f"<span style='color:#b00'>{html.escape(message)}</span>"

    def _render(self) -> None:
        for identity, pane in self._panes.items():
            rows = []
            for line in self._lines[identity]:
                mine = line.author == identity
                colour = "#b00" if not line.ok else ("#064" if mine else "#000")
                text = line.text if line.ok else f"⚠ {line.text}"
                rows.append(
                    f"<div style='color:{colour};text-align:{'right' if mine else 'left'}'>"
                    f"<b>{html.escape(line.author)}</b>: {html.escape(text)}</div>"
                )
            pane.value = "".join(rows) or "<i>no messages</i>"
        if self.wire is not None:
            self.wire.render()

    def as_text(self) -> str:
        """A plain-text rendering of every column."""
        parts = [f"[{i}]\n" + "\n".join(map(str, lines)) for i, lines in self._lines.items()]
        if self.wire is not None:
            parts.append("[what Twilio sees]\n" + self.wire.as_text())
        return "\n".join(parts)

    def close(self) -> None:
        """Stop listening to the journal and disable the controls (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self.wire is not None:
            self.wire.close()
        for control in [*self.inputs.values(), *self.send_buttons.values(), self.refresh_button]:
            control.disabled = True
        self.status.value = "<i>closed: replaced by a newer workbench, or close() was called</i>"
        _workbenches.forget(self.name, self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return widget_bundle(self.widget, f"ChatWorkbench({self.name!r})", **kwargs)
