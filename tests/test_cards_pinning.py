"""Trust-on-first-use pinning, key-change detection, pin stores, and safety numbers."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from twilio_e2ee.cards import (
    Card,
    FirstUseEvent,
    JsonFilePinStore,
    KeyAcknowledgedEvent,
    KeyChangedError,
    KeyChangeEvent,
    KeyRotatedEvent,
    MemoryPinStore,
    PinEvent,
    PinningManager,
    PinStoreError,
    PinUnchanged,
    SqlitePinStore,
    create_raw_card,
    fingerprint_digits,
    import_card,
    linked_card_list,
    safety_number,
)
from twilio_e2ee.crypto import PrivateKey, generate_key_pair, import_private_key
from twilio_e2ee.errors import CardError
from twilio_e2ee.errors import KeyChangedError as BaseKeyChangedError


def card(
    identity: str = "bob", prev: Card | None = None, key: PrivateKey | None = None, t: int = 1
) -> Card:
    key = key or generate_key_pair().private_key
    return import_card(
        create_raw_card(key, identity, created_at=t, previous_card_id=prev.id if prev else None)
    )


@pytest.fixture(params=["memory", "json", "sqlite"])
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> PinningManager:
    if request.param == "memory":
        return PinningManager(MemoryPinStore())
    if request.param == "json":
        return PinningManager(JsonFilePinStore(tmp_path / "pins.json"))
    return PinningManager(SqlitePinStore(tmp_path / "pins.db"))


def test_first_use_then_unchanged(manager: PinningManager) -> None:
    events: list[PinEvent] = []
    manager.subscribe(events.append)
    c1 = card()
    assert isinstance(manager.check(c1), FirstUseEvent)
    assert isinstance(manager.check(c1), PinUnchanged)
    assert manager.pinned("bob") == c1
    assert [type(e) for e in events] == [FirstUseEvent]


def test_rotation_via_chain_updates_pin(manager: PinningManager) -> None:
    events: list[PinEvent] = []
    manager.subscribe(events.append)
    c1 = card(t=1)
    manager.check(c1)
    c2 = card(prev=c1, t=2)
    ev = manager.check(c2)
    assert isinstance(ev, KeyRotatedEvent) and ev.previous == c1 and ev.card == c2
    assert manager.pinned("bob") == c2
    # Two rotations while away: the search result links c3 → c2 → (c1 by id).
    c3 = card(prev=c2, t=3)
    manager2 = PinningManager(manager.store)
    manager2.forget("bob")
    manager2.check(c1)
    (head,) = linked_card_list([c3, c2])
    assert isinstance(manager2.check(head), KeyRotatedEvent)
    assert manager2.pinned("bob") == c3
    assert isinstance(events[-1], KeyRotatedEvent)


def test_key_change_raises_and_needs_acknowledgement(manager: PinningManager) -> None:
    events: list[PinEvent] = []
    manager.subscribe(events.append)
    c1 = card()
    manager.check(c1)
    evil = card()  # not chained from c1, new key
    with pytest.raises(KeyChangedError) as info:
        manager.check(evil)
    err = info.value
    assert isinstance(err, BaseKeyChangedError)
    assert err.identity == "bob" and err.old_card == c1 and err.new_card == evil
    assert err.key_changed and "acknowledge" in str(err)
    assert isinstance(events[-1], KeyChangeEvent)
    assert "bob" in manager.pending_changes
    # Pin unchanged until acknowledged; asking again raises again.
    assert manager.pinned("bob") == c1
    with pytest.raises(KeyChangedError):
        manager.check(evil)
    ack = manager.acknowledge("bob", evil)
    assert isinstance(ack, KeyAcknowledgedEvent) and ack.previous == c1
    assert isinstance(manager.check(evil), PinUnchanged)
    assert manager.pending_changes == {}


def test_same_key_new_unchained_card_is_reported(manager: PinningManager) -> None:
    key = generate_key_pair().private_key
    manager.check(card(key=key, t=1))
    with pytest.raises(KeyChangedError) as info:
        manager.check(card(key=key, t=2))
    assert not info.value.key_changed


def test_rollback_to_old_card_is_a_change(manager: PinningManager) -> None:
    c1 = card(t=1)
    manager.check(c1)
    manager.check(card(prev=c1, t=2))
    with pytest.raises(KeyChangedError) as info:
        manager.check(c1)
    assert "roll-back" in info.value.reason


def test_chain_from_other_identity_is_not_a_rotation(manager: PinningManager) -> None:
    c1 = card("bob")
    manager.check(c1)
    hijack = card("bob", prev=card("mallory"))
    with pytest.raises(KeyChangedError):
        manager.check(hijack)


def test_check_all_checks_every_card_then_raises() -> None:
    m = PinningManager()
    m.check(card("bob"))
    with pytest.raises(KeyChangedError):
        m.check_all([card("bob"), card("carol")])
    assert m.pinned("carol") is not None


def test_json_store_persists_atomically_and_0600(tmp_path: Path) -> None:
    path = tmp_path / "pins.json"
    c1 = card("bob")
    PinningManager(JsonFilePinStore(path)).check(c1)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = PinningManager(JsonFilePinStore(path))
    assert again.pinned("bob") == c1
    with pytest.raises(KeyChangedError):
        again.check(card("bob"))
    assert [p.name for p in tmp_path.iterdir()] == ["pins.json"]  # no temp files left


def test_sqlite_store_persists(tmp_path: Path) -> None:
    c1 = card("bob")
    store = SqlitePinStore(tmp_path / "p.db")
    PinningManager(store).check(c1)
    store.close()
    assert PinningManager(SqlitePinStore(tmp_path / "p.db")).pinned("bob") == c1


def test_damaged_json_store_is_an_error_and_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "pins.json"
    PinningManager(JsonFilePinStore(path)).check(card("bob"))
    doc = json.loads(path.read_text())
    doc["pins"]["bob"]["card_id"] = "00" * 32
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    m = PinningManager(JsonFilePinStore(path))
    with pytest.raises(PinStoreError):
        m.check(card("carol"))
    assert path.read_bytes() == before
    path.write_text("{not json")
    with pytest.raises(PinStoreError):
        m.pinned("bob")
    path.write_text('{"format": "other"}')
    with pytest.raises(PinStoreError):
        m.pinned("bob")


def test_damaged_sqlite_store_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(PinStoreError):
        PinningManager(SqlitePinStore(path)).pinned("bob")


# --- safety numbers ---------------------------------------------------------------------------


def test_safety_number_is_symmetric_and_formatted() -> None:
    a, b = card("alice"), card("bob")
    n1, n2 = safety_number(a, b), safety_number(b, a)
    assert n1 == n2
    assert len(n1.digits) == 60 and n1.digits.isdigit()
    assert len(n1.groups) == 12 and all(len(g) == 5 for g in n1.groups)
    assert str(n1).count("\n") == 2
    assert n1.matches(" ".join(n1.groups)) and n1.matches(n2)
    assert safety_number(a, (b.identity, b.public_key)) == n1


def test_safety_number_changes_with_key_or_identity() -> None:
    a, b = card("alice"), card("bob")
    assert safety_number(a, b) != safety_number(a, card("bob"))
    assert safety_number(a, b) != safety_number(a, ("bobby", b.public_key))
    assert not safety_number(a, b).matches(safety_number(a, card("bob")))


def test_safety_number_construction_is_as_documented() -> None:
    key = import_private_key(bytes(range(32))).public_key
    der = key.der
    h = hashlib.sha512(b"\x00\x00" + der + b"alice").digest()
    for _ in range(5200):
        h = hashlib.sha512(h + der).digest()
    chunks = [int.from_bytes(h[i : i + 5], "big") % 100000 for i in range(0, 30, 5)]
    expected = "".join(f"{c:05d}" for c in chunks)
    assert fingerprint_digits("alice", key) == expected


def test_unencodable_identity_is_a_pin_store_error(tmp_path: Path) -> None:
    store = SqlitePinStore(tmp_path / "p.db")
    with pytest.raises(PinStoreError):
        store.get("\ud800")
    with pytest.raises(PinStoreError):
        store.delete("\ud800")
    store.close()


def test_listeners_run_outside_the_lock() -> None:
    """A listener may hand work to another thread that uses the manager (no deadlock)."""
    manager = PinningManager()
    manager.check(card("bob"))
    seen: list[dict[str, Any]] = []

    def listener(event: Any) -> None:
        worker = threading.Thread(target=lambda: seen.append(manager.pending_changes))
        worker.start()
        worker.join(2)
        assert not worker.is_alive(), "the listener was called with the manager locked"

    manager.subscribe(listener)
    with pytest.raises(KeyChangedError):
        manager.check(card("bob"))
    assert len(seen) == 1 and "bob" in seen[0]


def test_safety_number_odd_text_is_typed_or_no_match() -> None:
    number = safety_number(card("alice"), card("bob"))
    assert not number.matches("\ud800" + number.digits[1:])
    assert not number.matches("１" * 60)  # full-width digits are not the number
    with pytest.raises(CardError):
        safety_number(("\ud800", generate_key_pair().public_key), card("bob"))
