"""Sans-I/O formats of the chat adapter: attribute hints, the hardened envelope, replay windows."""

from __future__ import annotations

import itertools
import json
import secrets
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_e2ee.chat.attributes import (
    ATTRIBUTES_LIMIT,
    FORMAT_HARDENED,
    MessageHints,
    build_attributes,
    new_client_message_id,
    parse_attributes,
)
from twilio_e2ee.chat.errors import (
    AttributesError,
    CrossConversationError,
    DuplicateMessageError,
    HardenedFormatError,
    NotAddressedError,
    ReplayError,
    SenderMismatchError,
)
from twilio_e2ee.chat.hardened import (
    MAGIC,
    CounterSource,
    MemoryReplayStore,
    ReplayStore,
    SqliteReplayStore,
    check_binding,
    decode_envelope,
    encode_envelope,
    envelope_bytes,
)
from twilio_e2ee.errors import ChatError, E2EEError, MalformedInputError


def card_id() -> str:
    return secrets.token_hex(32)


CONV = "CH" + "a" * 32


# --- attributes ------------------------------------------------------------------------------


def test_hints_round_trip_and_extra_keys_kept() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    hints = MessageHints(
        format=FORMAT_HARDENED,
        sender_card_id=card_id(),
        encrypted_at=moment,
        client_message_id=new_client_message_id(),
    )
    text = build_attributes(hints, {"app": {"color": "blue"}})
    obj = json.loads(text)
    assert obj["e2ee"]["at"] == "2026-01-02T03:04:05.678Z"
    assert obj["app"] == {"color": "blue"}
    back, extra = parse_attributes(text)
    assert back == hints
    assert extra == {"app": {"color": "blue"}}


def test_hints_carry_no_secret_fields() -> None:
    hints = MessageHints(sender_card_id=card_id(), client_message_id=new_client_message_id())
    assert set(json.loads(build_attributes(hints))["e2ee"]) == {"v", "fmt", "card", "cmid"}


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "{}",
        "[]",
        "not json",
        '{"e2ee": 5}',
        '{"e2ee": {"v": true}}',
        "{" * 5000,
        5,
        b"\xff",
    ],
)
def test_foreign_or_broken_attributes_give_no_hints(text: str | None) -> None:
    hints, _ = parse_attributes(text)
    assert hints is None


def test_malformed_hint_fields_are_dropped_not_trusted() -> None:
    text = json.dumps(
        {"e2ee": {"v": 1, "fmt": "e3kit", "card": "XYZ", "at": "yesterday", "cmid": 42}}
    )
    hints, _ = parse_attributes(text)
    assert hints is not None
    assert hints.sender_card_id is None and hints.encrypted_at is None
    assert hints.client_message_id is None


def test_attribute_errors() -> None:
    with pytest.raises(AttributesError, match="reserved"):
        build_attributes(MessageHints(), {"e2ee": 1})
    with pytest.raises(AttributesError, match="JSON"):
        build_attributes(MessageHints(), {"x": object()})
    with pytest.raises(AttributesError, match="4096"):
        build_attributes(MessageHints(), {"x": "y" * ATTRIBUTES_LIMIT})
    with pytest.raises(AttributesError, match="timezone"):
        build_attributes(MessageHints(encrypted_at=datetime(2026, 1, 1)))
    with pytest.raises(AttributesError, match="surrogate"):
        build_attributes(MessageHints(), {"note": "half a pair \ud83d"})


# --- hardened envelope -----------------------------------------------------------------------


def make_env(**overrides: object) -> tuple[bytes, str, list[str]]:
    sender = card_id()
    recipients = [card_id(), card_id()]
    args: dict[str, object] = {
        "conversation_sid": CONV,
        "sender_card_id": sender,
        "recipient_card_ids": recipients,
        "payload": "héllo".encode(),
        "is_text": True,
        "counter": 7,
    }
    args.update(overrides)
    env = encode_envelope(**args)  # type: ignore[arg-type]
    return envelope_bytes(env), sender, recipients


def test_envelope_round_trip_sorted_and_includes_sender() -> None:
    data, sender, recipients = make_env()
    assert data.startswith(MAGIC)
    env = decode_envelope(data)
    assert env.conversation_sid == CONV
    assert env.sender_card_id == sender
    assert env.recipient_card_ids == tuple(sorted([sender, *recipients]))
    assert env.text == "héllo" and env.counter == 7 and len(env.message_id) == 16
    assert envelope_bytes(env) == data


def test_envelope_bytes_payload() -> None:
    data, _, _ = make_env(payload=b"\xff\x00", is_text=False)
    env = decode_envelope(data)
    assert env.payload == b"\xff\x00" and env.text is None


def test_every_truncation_is_a_typed_error() -> None:
    data, _, _ = make_env(payload=b"")
    for cut in range(len(data)):
        with pytest.raises(HardenedFormatError):
            decode_envelope(data[:cut])


def test_unsorted_recipients_and_bad_kind_rejected() -> None:
    data, _, _ = make_env(payload=b"")
    env = decode_envelope(data)
    ids = list(env.recipient_card_ids)
    start = len(MAGIC) + 2 + len(CONV) + 32 + 2
    swapped = bytearray(data)
    swapped[start : start + 64] = bytes.fromhex(ids[1]) + bytes.fromhex(ids[0])
    with pytest.raises(HardenedFormatError, match="sorted"):
        decode_envelope(bytes(swapped))
    bad_kind = bytearray(data)
    bad_kind[-1] = 9
    with pytest.raises(HardenedFormatError, match="kind"):
        decode_envelope(bytes(bad_kind))
    bad_text = data + b"\xff"
    with pytest.raises(HardenedFormatError, match="UTF-8"):
        decode_envelope(bad_text)


def test_encode_rejects_bad_inputs() -> None:
    with pytest.raises(HardenedFormatError):
        make_env(conversation_sid="")
    with pytest.raises(HardenedFormatError):
        make_env(sender_card_id="ABC")
    with pytest.raises(HardenedFormatError):
        make_env(counter=-1)
    with pytest.raises(HardenedFormatError):
        make_env(message_id=b"short")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_decoder_fuzz_raises_only_package_errors(blob: bytes) -> None:
    for data in (blob, MAGIC + blob):
        try:
            decode_envelope(data)
        except E2EEError as exc:
            assert isinstance(exc, (ChatError, MalformedInputError))


def test_binding_checks() -> None:
    data, sender, recipients = make_env()
    env = decode_envelope(data)
    reader = {recipients[0]}
    check_binding(env, conversation_sid=CONV, signer_card_id=sender, reader_card_ids=reader)
    with pytest.raises(CrossConversationError):
        check_binding(
            env, conversation_sid="CH" + "b" * 32, signer_card_id=sender, reader_card_ids=reader
        )
    with pytest.raises(SenderMismatchError):
        check_binding(
            env, conversation_sid=CONV, signer_card_id=recipients[1], reader_card_ids=reader
        )
    with pytest.raises(NotAddressedError):
        check_binding(
            env, conversation_sid=CONV, signer_card_id=sender, reader_card_ids={card_id()}
        )


# --- counters and replay ---------------------------------------------------------------------


def test_counter_source_strictly_increasing_and_clock_based() -> None:
    counters = CounterSource()
    values = [counters.next(CONV) for _ in range(1000)]
    assert all(a < b for a, b in itertools.pairwise(values))
    assert CounterSource().next(CONV) > values[0]  # a "restarted" sender does not go back


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_replay_store_rules(kind: str, tmp_path: Path) -> None:
    store: ReplayStore = (
        MemoryReplayStore(window=4)
        if kind == "memory"
        else SqliteReplayStore(tmp_path / "replay.db", window=4)
    )
    sender = card_id()

    def check(mid: bytes, counter: int, sid: str | None, conv: str = CONV) -> None:
        store.check_and_record(
            conversation_sid=conv,
            sender_card_id=sender,
            message_id=mid,
            counter=counter,
            message_sid=sid,
        )

    ids = [secrets.token_bytes(16) for _ in range(10)]
    check(ids[0], 10, "IM0")
    check(ids[0], 10, "IM0")  # re-reading the same Twilio message is fine
    with pytest.raises(DuplicateMessageError):
        check(ids[0], 10, "IM1")  # the same message posted again
    with pytest.raises(ReplayError):
        check(ids[1], 10, "IM2")  # new id, reused counter
    check(ids[2], 8, "IM3")  # out of order inside the window is accepted once
    check(ids[3], 12, "IM4")
    check(ids[4], 13, "IM5")  # window full: 8, 10, 12, 13
    check(ids[5], 14, "IM6")  # drops 8
    with pytest.raises(ReplayError, match="older"):
        check(ids[6], 9, "IM7")
    # the rejected message left no trace: another fresh message is still fine
    check(ids[6], 15, "IM7")
    # another conversation is another stream
    check(ids[7], 1, "IM8", conv="CH" + "c" * 32)
    if isinstance(store, SqliteReplayStore):  # state survives a restart
        store.close()
        store = SqliteReplayStore(tmp_path / "replay.db", window=4)
        with pytest.raises(DuplicateMessageError):
            check(ids[3], 12, "IM9")
        with pytest.raises(ReplayError, match="older"):
            check(ids[8], 11, "IM10")
        check(ids[8], 16, "IM10")
        store.close()


def test_replay_store_header_layout_is_documented() -> None:
    # message id, counter, sent-at and kind follow the recipients, big-endian.
    data, _, _ = make_env(counter=0x0102030405060708, payload=b"")
    env = decode_envelope(data)
    tail = data[-(16 + 8 + 8 + 1) :]
    assert tail[:16] == env.message_id
    assert struct.unpack(">Q", tail[16:24])[0] == 0x0102030405060708


def test_counters_past_int64_are_format_errors(tmp_path: Path) -> None:
    """A signed counter >= 2**63 cannot be stored by SQLite: it is malformed, never a crash."""
    with pytest.raises(HardenedFormatError, match="counter"):
        make_env(counter=2**63)
    data, _, _ = make_env(counter=2**63 - 1, payload=b"")
    assert decode_envelope(data).counter == 2**63 - 1
    forged = bytearray(data)
    forged[-(8 + 8 + 1) : -(8 + 1)] = struct.pack(">Q", 2**63)
    with pytest.raises(HardenedFormatError, match="counter"):
        decode_envelope(bytes(forged))
    store = SqliteReplayStore(tmp_path / "replay.db")
    store.check_and_record(
        conversation_sid=CONV,
        sender_card_id=card_id(),
        message_id=secrets.token_bytes(16),
        counter=2**63 - 1,
        message_sid="IM1",
    )
    store.close()


def test_sqlite_replay_store_failures_are_typed(tmp_path: Path) -> None:
    with pytest.raises(ChatError, match="replay store"):
        SqliteReplayStore(tmp_path / "no" / "such" / "dir" / "replay.db")
    store = SqliteReplayStore(tmp_path / "replay.db")
    store.close()
    with pytest.raises(ChatError, match="replay store"):
        store.check_and_record(
            conversation_sid=CONV,
            sender_card_id=card_id(),
            message_id=secrets.token_bytes(16),
            counter=1,
            message_sid="IM1",
        )
