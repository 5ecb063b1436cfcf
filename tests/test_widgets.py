"""Notebook widgets and the IPython extension, driven headless (no kernel, no browser)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytest.importorskip("ipywidgets")

from mock_services.journal import Journal, JournalEntry
from twilio_e2ee import crypto
from twilio_e2ee.errors import ConfigurationError, E2EEError, TokenError
from twilio_e2ee.notebook import display
from twilio_e2ee.notebook._base import NotebookError
from twilio_e2ee.notebook.chat import ChatLine, ChatWorkbench
from twilio_e2ee.notebook.inspector import Inspector
from twilio_e2ee.notebook.magics import e2ee_stack
from twilio_e2ee.notebook.participants import EncryptedParticipant, PlaintextParticipant
from twilio_e2ee.notebook.progress import ProgressBar
from twilio_e2ee.notebook.wire import WireView, message_row, wire_rows

CH = "CH" + "1" * 32


def _post(journal: Journal, author: str, body: str, sid: str = CH) -> None:
    journal.record(
        JournalEntry(
            service="twilio",
            method="POST",
            path=f"/v1/Conversations/{sid}/Messages",
            status=201,
            identity=author,
            request={"Author": author, "Body": body, "Attributes": "{}"},
        )
    )


class FakeRoom:
    """A stand-in for a Twilio conversation: stores posted bodies and journals them."""

    def __init__(self, journal: Journal, *, rot13: bool = False) -> None:
        self.journal = journal
        self.messages: list[tuple[str, str]] = []
        self.rot13 = rot13

    def post(self, author: str, text: str) -> None:
        body = text.translate(_ROT13) if self.rot13 else text
        self.messages.append((author, body))
        _post(self.journal, author, body)


_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM",
)


class FakeParticipant:
    def __init__(self, identity: str, room: FakeRoom, *, fail_receive: bool = False) -> None:
        self._identity = identity
        self.room = room
        self.cursor = 0
        self.fail_receive = fail_receive

    @property
    def identity(self) -> str:
        return self._identity

    def send(self, text: str) -> None:
        if text == "boom":
            raise E2EEError("refused by the fake")
        self.room.post(self.identity, text)

    def receive(self) -> list[ChatLine]:
        if self.fail_receive:
            raise E2EEError("cannot decrypt")
        new = self.room.messages[self.cursor :]
        self.cursor = len(self.room.messages)
        decode = (lambda s: s.translate(_ROT13)) if self.room.rot13 else (lambda s: s)
        return [ChatLine(author, decode(body)) for author, body in new]


def test_progress_bar_tracks_and_clamps() -> None:
    bar = ProgressBar(3, "work")
    assert list(bar.track("abc")) == ["a", "b", "c"]
    assert (bar.value, bar.total, bar.done) == (3, 3, True)
    assert bar.bar.value == 3 and bar.label.value == "3/3"
    assert bar.bar.bar_style == "success"
    bar.update(10)
    assert bar.value == 3
    assert bar._repr_mimebundle_()["text/plain"] == "ProgressBar('work')"
    for bad in (-1, 2.5, "3", True):
        with pytest.raises(NotebookError):
            ProgressBar(bad)  # type: ignore[arg-type]
    with pytest.raises(NotebookError):
        bar.update(-1)


def test_inspector_shows_key_ids_never_secrets() -> None:
    alice, bob = crypto.generate_key_pair(), crypto.generate_key_pair()
    inspector = Inspector({"alice": alice.private_key, "bob public": bob.public_key})
    assert inspector.names == ["alice", "bob public"]
    assert inspector.selector.value == "bob public"
    assert dict(inspector.rows)["key id (Virgil)"] == bob.public_key.identifier.hex()
    inspector.selector.value = "alice"
    rows = dict(inspector.rows)
    assert inspector.title == "Ed25519 private key"
    assert rows["key id (Virgil)"] == alice.private_key.identifier.hex()
    assert rows["secret"] == "not shown"
    seed_forms = (alice.private_key.seed.hex(), crypto.export_private_key(alice.private_key).hex())
    for secret in seed_forms:
        assert secret not in inspector.details.value
    with pytest.raises(NotebookError):
        inspector.add("nonsense", object())
    with pytest.raises(NotebookError):
        inspector.add("", alice.public_key)
    with pytest.raises(NotebookError, match="mapping"):
        Inspector([alice.public_key])  # type: ignore[arg-type]
    assert inspector.names == ["alice", "bob public"]


def test_message_row_only_for_posted_messages() -> None:
    entry = JournalEntry("twilio", "POST", f"/v1/Conversations/{CH}/Messages", 201, "alice",
                         {"Author": "alice", "Body": "hi"})  # fmt: skip
    row = message_row(entry)
    assert row is not None and (row.author, row.body, row.conversation_sid) == ("alice", "hi", CH)
    parsed = JournalEntry(
        "twilio", "POST", entry.path, 201, "bob", {"Body": "x", "Attributes": {"a": 1}}
    )
    row2 = message_row(parsed)
    assert row2 is not None and (row2.author, row2.attributes) == ("bob", '{"a":1}')
    assert message_row(JournalEntry("twilio", "GET", entry.path, 200)) is None
    assert message_row(JournalEntry("twilio", "POST", "/v1/Conversations", 201)) is None
    service_path = f"/v1/Services/IS{'2' * 32}/Conversations/{CH}/Messages"
    assert message_row(JournalEntry("twilio", "POST", service_path, 201, None, None)) is not None


def test_wire_view_follows_journal_from_other_threads() -> None:
    journal = Journal()
    _post(journal, "alice", "before")
    view = WireView(journal, conversation_sid=CH)
    thread = threading.Thread(target=_post, args=(journal, "bob", "x" * 500))
    thread.start()
    thread.join()
    _post(journal, "carol", "elsewhere", sid="CH" + "3" * 32)
    assert [str(r)[:12] for r in view.rows] == ["alice: befor", "bob: xxxxxxx"]
    assert "(500 chars)" in view.body.value and "elsewhere" not in view.body.value
    view.close()
    _post(journal, "alice", "after close")
    assert len(view.rows) == 2
    assert view.closed and "closed" in view.header.value
    assert len(journal._listeners) == 0


def test_wire_view_rerun_replaces_previous_view_and_close_unsubscribes() -> None:
    """Re-running a cell that creates a view must not leave the old one on the journal."""
    journal = Journal()
    first = WireView(journal, conversation_sid=CH)
    second = WireView(journal, conversation_sid=CH)  # the same cell, run again
    assert first.closed and not second.closed
    assert len(journal._listeners) == 1
    _post(journal, "alice", "one")
    assert first.rows == [] and [r.body for r in second.rows] == ["one"]
    other = WireView(journal, name="other")  # a second view shown at the same time
    owned = WireView(journal, name=None)  # owned by its creator (as the workbench's)
    third = WireView(journal, conversation_sid=CH)
    assert second.closed and not other.closed and not owned.closed
    assert len(journal._listeners) == 3
    for view in (third, other, owned, third):  # close() is idempotent
        view.close()
    assert journal._listeners == []
    assert third._repr_mimebundle_()["text/plain"] == "WireView('wire')"


class RacyJournal(Journal):
    """A message posted on another thread while a view reads the entries (before or after)."""

    def __init__(self, *, post_first: bool) -> None:
        super().__init__()
        self.post_first = post_first
        self.raced = False

    @property
    def entries(self) -> list[JournalEntry]:
        if self.raced:
            return super().entries
        self.raced = True
        if self.post_first:
            _post(self, "bob", "racing")
            return super().entries
        snapshot = super().entries
        _post(self, "bob", "racing")
        return snapshot


@pytest.mark.parametrize("post_first", [True, False])
def test_wire_view_sees_a_concurrent_post_exactly_once(post_first: bool) -> None:
    journal = RacyJournal(post_first=post_first)
    _post(journal, "alice", "before")
    view = WireView(journal, name=None)
    assert [r.body for r in view.rows] == ["before", "racing"]
    _post(journal, "alice", "after")
    assert [r.body for r in view.rows] == ["before", "racing", "after"]
    view.close()


def test_wire_rows_is_a_snapshot_and_bad_input_is_typed() -> None:
    journal = Journal()
    _post(journal, "alice", "here")
    _post(journal, "bob", "elsewhere", sid="CH" + "3" * 32)
    assert [r.body for r in wire_rows(journal, CH)] == ["here"]
    assert len(wire_rows(journal)) == 2 and journal._listeners == []
    for bad in (None, [], "journal"):
        with pytest.raises(NotebookError, match="journal"):
            WireView(bad)  # type: ignore[arg-type]
        with pytest.raises(NotebookError):
            wire_rows(bad)  # type: ignore[arg-type]
    for keep in (0, -3, 1.5):
        with pytest.raises(NotebookError):
            WireView(journal, keep=keep, name=None)  # type: ignore[arg-type]
    assert journal._listeners == []


def test_chat_workbench_headless_clicks() -> None:
    journal = Journal()
    room = FakeRoom(journal, rot13=True)
    people = [FakeParticipant(name, room) for name in ("alice", "bob", "carol")]
    bench = ChatWorkbench(people, journal=journal, conversation_sid=CH, name="t1")
    bench.inputs["alice"].value = "Hello Bob"
    bench.send_buttons["alice"].click()
    assert bench.inputs["alice"].value == ""
    for who in ("alice", "bob", "carol"):
        assert [str(line) for line in bench.transcript(who)] == ["alice: Hello Bob"]
    assert bench.wire is not None
    assert [r.body for r in bench.wire.rows] == ["Uryyb Obo"]
    assert "Uryyb Obo" in bench.wire.body.value
    assert "Hello Bob" in bench._panes["bob"].value
    bench.inputs["bob"].value = "boom"
    bench.send_buttons["bob"].click()
    assert bench.errors == ["bob could not send: refused by the fake"]
    assert "refused by the fake" in bench.status.value
    assert bench.inputs["bob"].value == "boom"  # kept so the user can retry
    bench.inputs["carol"].value = ""
    bench.send_buttons["carol"].click()  # empty input: nothing sent
    assert len(room.messages) == 1
    assert "[what Twilio sees]\nalice: Uryyb Obo" in bench.as_text()
    assert bench._repr_mimebundle_()["text/plain"] == "ChatWorkbench('t1')"
    bench.close()


def test_chat_workbench_rerun_replaces_previous_view() -> None:
    journal = Journal()
    room = FakeRoom(journal)
    first = ChatWorkbench([FakeParticipant("a", room)], journal=journal, name="t2")
    second = ChatWorkbench([FakeParticipant("a", room)], journal=journal, name="t2")
    _post(journal, "a", "one")
    assert first.wire is not None and second.wire is not None
    assert first.wire.rows == [] and len(second.wire.rows) == 1
    assert first.closed and first.refresh_button.disabled and first.send_buttons["a"].disabled
    assert "closed" in first.status.value
    with pytest.raises(NotebookError, match="closed"):
        first.send("a", "late")
    second.close()
    second.close()
    assert len(journal._listeners) == 0


def test_chat_workbench_reports_receive_failures_and_rejects_bad_setup() -> None:
    room = FakeRoom(Journal())
    bench = ChatWorkbench([FakeParticipant("a", room, fail_receive=True)], name="t3")
    bench.refresh_button.click()
    assert bench.errors == ["a could not receive: cannot decrypt"]
    bench.close()
    for bad in ([], "alice", [object()]):
        with pytest.raises(NotebookError):
            ChatWorkbench(bad)  # type: ignore[arg-type]
    with pytest.raises(NotebookError, match="distinct"):
        ChatWorkbench([FakeParticipant("a", room), FakeParticipant("a", room)])
    other = ChatWorkbench([FakeParticipant("a", room)], name="t3b")
    with pytest.raises(NotebookError, match="not in this workbench"):
        other.transcript("zed")
    with pytest.raises(NotebookError, match="not in this workbench"):
        other.send("zed", "hi")
    with pytest.raises(NotebookError, match="non-empty"):
        other.send("a", "")
    assert room.messages == []
    other.close()


def test_participants_refuse_bad_input() -> None:
    with pytest.raises(NotebookError, match="EncryptedConversation"):
        EncryptedParticipant(object())  # type: ignore[arg-type]
    with pytest.raises(NotebookError):
        PlaintextParticipant(None, CH, "")
    with pytest.raises(NotebookError, match="SID"):
        PlaintextParticipant(None, "not-a-sid", "alice")


def test_display_renders_package_types_without_secrets() -> None:
    pair = crypto.generate_key_pair()
    html_private = display.render_html(pair.private_key)
    assert html_private is not None and pair.private_key.identifier.hex() in html_private
    assert pair.private_key.seed.hex() not in html_private
    html_pair = display.render_html(pair)
    assert html_pair is not None and "not shown" in html_pair
    journal = Journal()
    _post(journal, "alice", "<script>")
    rendered = display.render_html(journal)
    assert rendered is not None and "&lt;script&gt;" in rendered and "<script>" not in rendered
    assert display.render_html(object()) is None


def test_claims_table_decodes_and_rejects_garbage() -> None:
    import jwt as pyjwt

    token = pyjwt.encode({"sub": "alice", "exp": 1_900_000_000}, "k" * 32, algorithm="HS256")
    table = display.ClaimsTable.from_token(token, "test")
    names = [(part, name) for part, name, _, _ in table.rows()]
    assert names == [("header", "alg"), ("header", "typ"), ("claims", "sub"), ("claims", "exp")]
    assert "2030-03-17" in str(table) and "expires at" in table._repr_html_()
    for bad in ("abc", "a.b.c", "e30.W10.x", None, b"a.b.c"):
        with pytest.raises(TokenError):
            display.decode_jwt(bad)  # type: ignore[arg-type]


def test_extension_registers_formatter_and_magic() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell: Any = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "twilio_e2ee.notebook")
    try:
        key = crypto.generate_key_pair().public_key
        data, _ = shell.display_formatter.format(key)
        assert key.identifier.hex() in data["text/html"]
        assert "e2ee_stack" in shell.magics_manager.magics["line"]
        with pytest.raises(ConfigurationError, match="usage"):
            e2ee_stack("launch")
        status = shell.run_line_magic("e2ee_stack", "status")
        assert status.running is False and "stopped" in str(status)
    finally:
        shell.run_line_magic("unload_ext", "twilio_e2ee.notebook")
    assert "e2ee_stack" not in shell.magics_manager.magics["line"]
    data, _ = shell.display_formatter.format(key)
    assert "text/html" not in data
