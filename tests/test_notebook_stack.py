"""The notebook stack singleton, %e2ee_stack, and the workshop helpers on the offline stack."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("ipywidgets")

from twilio_e2ee.credentials import ENV_NAMES
from twilio_e2ee.notebook import stack as nbstack
from twilio_e2ee.notebook.magics import e2ee_stack
from twilio_e2ee.notebook.participants import EncryptedParticipant, PlaintextParticipant
from twilio_e2ee.notebook.widgets import ChatWorkbench
from twilio_e2ee.notebook.workshop import Services, connect


def _server_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.is_alive() and t.name.startswith("mock-"))


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    baseline = _server_threads()
    try:
        yield connect("offline")
    finally:
        nbstack.stop_stack()
    assert _server_threads() == baseline


def test_stack_singleton_start_reset_stop(services: Services, capsys: Any) -> None:
    first = nbstack.current_stack()
    assert first is not None and services.stack is first
    threads = _server_threads()
    assert nbstack.start_stack() is first  # re-running a cell reuses the stack
    assert connect("offline").backend_url == services.backend_url
    assert _server_threads() == threads
    status = e2ee_stack("status")
    assert status.running and status.server_threads >= 3 and "twilio" in status.urls
    reset = e2ee_stack("reset")
    second = nbstack.current_stack()
    assert second is not first and reset.urls != status.urls
    assert _server_threads() == threads  # the old servers are gone
    assert "note: token backend in DEVELOPMENT mode" in capsys.readouterr().out
    stopped = e2ee_stack("stop")
    assert not stopped.running and nbstack.current_stack() is None
    assert "stopped" in str(stopped)
    assert e2ee_stack("start").running


def test_connect_real_without_credentials_names_the_variables(services: Services) -> None:
    from twilio_e2ee.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="TWILIO_SERVICE_SID"):
        connect("real")
    with pytest.raises(ConfigurationError):
        connect("cloud")  # type: ignore[arg-type]


def test_workshop_helpers_refuse_bad_input(services: Services) -> None:
    from twilio_e2ee.notebook._base import NotebookError

    journal = services.twilio_journal
    assert journal is not None
    before = len(journal)
    for bad in ("alice", ["alice", ""], [None]):
        with pytest.raises(NotebookError, match="identities"):
            services.new_conversation(bad)  # type: ignore[arg-type]
    for identity in ("", "  ", None):
        with pytest.raises(NotebookError, match="identity"):
            services.user(identity)  # type: ignore[arg-type]
    assert len(journal) == before  # refused before any request


def test_encrypted_workbench_end_to_end(services: Services) -> None:
    alice = services.user("alice")
    bob = services.user("bob", via_backend=False)
    assert alice.backend is not None and alice.card is not None
    assert services.user("alice") is alice  # re-running a cell does not register twice
    sid = services.new_conversation(["alice", "bob"])
    people = [
        EncryptedParticipant(alice.conversation(sid)),
        EncryptedParticipant(bob.conversation(sid)),
    ]
    bench = ChatWorkbench(people, journal=services.twilio_journal, conversation_sid=sid, name="e2e")
    bench.inputs["alice"].value = "the door code is 4711"
    bench.send_buttons["alice"].click()
    assert [str(line) for line in bench.transcript("bob")] == ["alice: the door code is 4711"]
    assert bench.wire is not None and len(bench.wire.rows) == 1
    assert "4711" not in bench.wire.rows[0].body and bench.wire.rows[0].author == "alice"
    # a forged message (Bob's ciphertext under Alice's name) is shown as refused, not as text
    twilio = services.twilio_client()
    bench.send("bob", "hello")
    twilio.conversations.v1.conversations(sid).messages.create(
        author="alice", body=bench.wire.rows[1].body
    )
    bench.refresh_button.click()
    last = bench.transcript("bob")[-1]
    assert not last.ok and "signature_mismatch" in last.text
    bench.close()


def test_plaintext_workbench_shows_twilio_reading_everything(services: Services) -> None:
    twilio = services.twilio_client()
    sid = services.new_conversation(["alice", "bob"])
    people = [PlaintextParticipant(twilio, sid, "alice"), PlaintextParticipant(twilio, sid, "bob")]
    bench = ChatWorkbench(people, journal=services.twilio_journal, conversation_sid=sid, name="p")
    bench.send("bob", "hunter2")
    assert bench.transcript("alice")[-1].text == "hunter2"
    assert bench.wire is not None and bench.wire.rows[-1].body == "hunter2"
    assert bench.transcript("alice") == bench.transcript("bob")
    bench.close()
