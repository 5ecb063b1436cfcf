"""Card model: Virgil's vectors, import/export, chains, the card active at a moment, and a fuzz."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_e2ee.cards import (
    Card,
    CardNotActiveError,
    MalformedCardError,
    RawSignedModel,
    card_active_at,
    card_id_of,
    create_raw_card,
    import_card,
    linked_card_list,
)
from twilio_e2ee.crypto import generate_key_pair, import_private_key, import_public_key, verify
from twilio_e2ee.errors import E2EEError


def test_stc3_card_id_and_fields(vectors: dict[str, Any]) -> None:
    sdk = vectors["sdk"]
    card = import_card(sdk["STC-3.as_json"])
    assert card.id == sdk["STC-3.card_id"]
    assert card.identity == "test"
    assert card.version == "5.0"
    assert card.created_at == 1515686245
    assert card.public_key == import_public_key(sdk["STC-3.public_key_base64"])
    assert card.previous_card_id is None
    assert card.signatures == ()
    # Export is byte-identical to the vector (compact, sorted keys).
    assert card.raw.to_json_str() == sdk["STC-3.as_json"]


def test_stc4_signatures(vectors: dict[str, Any]) -> None:
    sdk = vectors["sdk"]
    model = RawSignedModel.from_json(json.loads(sdk["STC-4.as_json"]))
    card = Card.from_raw(model)
    assert card.id == sdk["STC-4.card_id"]
    assert [s.signer for s in card.signatures] == ["self", "virgil", "extra"]
    self_sig = model.signature("self")
    assert self_sig is not None
    assert base64.b64encode(self_sig.signature).decode() == sdk["STC-4.signature_self_base64"]
    assert verify(model.content_snapshot, self_sig.signature, card.public_key)
    assert model.to_json_str() == sdk["STC-4.as_json"]


def test_stc34_string_form_and_reproduction(vectors: dict[str, Any]) -> None:
    sdk = vectors["sdk"]
    model = RawSignedModel.from_string(sdk["STC-34.as_string"])
    assert model.to_string() == sdk["STC-34.as_string"]
    card = import_card(sdk["STC-34.as_string"])
    assert card.public_key == import_public_key(sdk["STC-34.public_key_base64"])
    sig = model.signature("self")
    assert sig is not None and sig.extra_fields == {"info": "some_additional_info"}
    assert verify(model.content_snapshot + (sig.snapshot or b""), sig.signature, card.public_key)
    # Creating the same card with the same key reproduces Virgil's string byte for byte.
    key = import_private_key(sdk["STC-34.private_key_base64"])
    ours = create_raw_card(
        key, "test", created_at=1518513311, extra_fields={"info": "some_additional_info"}
    )
    assert ours.to_string() == sdk["STC-34.as_string"]


def test_snapshot_kept_verbatim_not_reserialised() -> None:
    key = generate_key_pair().private_key
    pk = base64.b64encode(key.public_key.der).decode()
    # Python-SDK style: sorted keys with spaces; must never be rewritten.
    snapshot = json.dumps(
        {"version": "5.0", "public_key": pk, "identity": "ann", "created_at": 7}, indent=2
    ).encode()
    model = RawSignedModel(snapshot).add_signature("self", key)
    back = RawSignedModel.from_string(model.to_string())
    assert back.content_snapshot == snapshot
    assert import_card(back.to_json()).id == card_id_of(snapshot)


def test_created_card_is_compact_js_order() -> None:
    key = generate_key_pair().private_key
    prev = "ab" * 32
    model = create_raw_card(key, "alice", previous_card_id=prev, created_at=42)
    text = model.content_snapshot.decode()
    assert text.startswith('{"created_at":42,"identity":"alice","public_key":"MCowBQYDK2Vw')
    assert text.endswith(f'"version":"5.0","previous_card_id":"{prev}"}}')
    card = import_card(model.to_json())
    assert card.previous_card_id == prev and card.created.year == 1970


def _card(key: Any, identity: str, created: int, prev: Card | None = None) -> Card:
    return import_card(
        create_raw_card(
            key, identity, created_at=created, previous_card_id=prev.id if prev else None
        )
    )


def test_linked_card_list_and_active_at() -> None:
    k1, k2, k3 = (generate_key_pair().private_key for _ in range(3))
    c1 = _card(k1, "bob", 1000)
    c2 = _card(k2, "bob", 2000, c1)
    c3 = _card(k3, "bob", 3000, c2)
    other = _card(generate_key_pair().private_key, "carol", 1500)
    heads = linked_card_list([c1, other, c3, c2])
    assert [h.identity for h in heads] == ["carol", "bob"]
    head = heads[1]
    assert head.id == c3.id and not head.is_outdated
    assert [c.id for c in head.chain()] == [c3.id, c2.id, c1.id]
    assert head.previous_card is not None and head.previous_card.is_outdated
    assert not c2.is_outdated  # inputs untouched
    assert card_active_at(head, 3500).id == c3.id
    assert card_active_at(head, 2999.5).id == c2.id
    assert card_active_at(head, datetime.fromtimestamp(2000, UTC)).id == c2.id
    assert card_active_at(head, 1000).id == c1.id
    with pytest.raises(CardNotActiveError):
        card_active_at(head, 999)
    with pytest.raises(CardNotActiveError):
        card_active_at(head, datetime(2020, 1, 1))  # naive datetime refused


def test_chain_never_crosses_identities() -> None:
    alice = _card(generate_key_pair().private_key, "alice", 1000)
    mallory = _card(generate_key_pair().private_key, "mallory", 2000, alice)
    heads = linked_card_list([alice, mallory])
    assert {h.identity for h in heads} == {"alice", "mallory"}
    assert all(not h.is_outdated and h.previous_card is None for h in heads)


@pytest.mark.parametrize(
    "content",
    [
        {"identity": "a", "public_key": "x", "version": "5.0", "created_at": 1},
        {"identity": "", "version": "5.0", "created_at": 1},
        {"identity": "a", "version": "4.0", "created_at": 1},
        {"identity": "a", "version": "5.0", "created_at": True},
        {"identity": "a", "version": "5.0", "created_at": 1, "previous_card_id": "zz"},
        [],
    ],
)
def test_bad_content_snapshots(content: Any) -> None:
    key = generate_key_pair().private_key
    if isinstance(content, dict) and content.get("public_key") is None and "identity" in content:
        content = {**content, "public_key": base64.b64encode(key.public_key.der).decode()}
    model = RawSignedModel(json.dumps(content).encode())
    with pytest.raises(MalformedCardError):
        Card.from_raw(model)


def test_small_order_key_in_card_refused() -> None:
    small = bytes.fromhex("302a300506032b6570032100") + (1).to_bytes(32, "little")  # identity
    content = {
        "created_at": 1,
        "identity": "a",
        "public_key": base64.b64encode(small).decode(),
        "version": "5.0",
    }
    with pytest.raises(MalformedCardError, match="unusable"):
        Card.from_raw(RawSignedModel(json.dumps(content).encode()))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "{",
        "[]",
        '{"content_snapshot": 5}',
        '{"content_snapshot": "!!"}',
        '{"content_snapshot": ""}',
        '{"content_snapshot": "e30=", "signatures": {}}',
        '{"content_snapshot": "e30=", "signatures": [{"signer": "self"}]}',
        '{"content_snapshot": "e30=", "signatures": [{"signer": "s", "signature": "AA=="},'
        ' {"signer": "s", "signature": "AA=="}]}',
        "[" * 100000,
    ],
)
def test_bad_models(raw: str) -> None:
    with pytest.raises(MalformedCardError):
        import_card(raw)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200),
        _json_values.map(json.dumps),
        st.builds(
            lambda snap, sigs: json.dumps(
                {"content_snapshot": base64.b64encode(snap).decode(), "signatures": sigs}
            ),
            st.one_of(st.binary(max_size=80), _json_values.map(lambda v: json.dumps(v).encode())),
            _json_values,
        ),
    )
)
def test_fuzz_parser_raises_only_package_errors(data: str | bytes) -> None:
    for parse in (import_card, RawSignedModel.from_string):
        with contextlib.suppress(E2EEError):
            parse(data)


def test_duplicate_keys_in_snapshot_refused() -> None:
    key = generate_key_pair().private_key
    pk = base64.b64encode(key.public_key.der).decode()
    text = (
        '{"created_at":1,"identity":"alice","identity":"bob",'
        f'"public_key":"{pk}","version":"5.0"}}'
    )
    with pytest.raises(MalformedCardError, match="duplicate"):
        Card.from_raw(RawSignedModel(text.encode()))


def test_lone_surrogate_escapes_are_malformed_cards() -> None:
    """ "\\ud800" parses to a str no database, hash or signature can encode: refused up front."""
    key = generate_key_pair().private_key
    pk = base64.b64encode(key.public_key.der).decode()
    snapshot = '{"created_at":1,"identity":"\\ud800","public_key":"' + pk + '","version":"5.0"}'
    with pytest.raises(MalformedCardError):
        Card.from_raw(RawSignedModel(snapshot.encode()))
    with pytest.raises(MalformedCardError):
        RawSignedModel.from_json(
            '{"content_snapshot":"e30=","signatures":[{"signer":"\\udc00","signature":"AA=="}]}'
        )
    with pytest.raises(MalformedCardError):  # the same escape in UTF-16 JSON
        Card.from_raw(RawSignedModel(snapshot.encode("utf-16")))
    raw_surrogate = snapshot.replace("\\ud800", "\ud800").encode("utf-8", "surrogatepass")
    with pytest.raises(MalformedCardError):  # encoded as bytes ED A0 80, not escaped
        Card.from_raw(RawSignedModel(raw_surrogate))
    paired = snapshot.replace("\\ud800", "\\ud83d\\udc0d")  # a valid pair is text: 🐍
    assert Card.from_raw(RawSignedModel(paired.encode())).identity == "\U0001f40d"


@pytest.mark.parametrize(
    "extra", [{"x": object()}, {"x": float("nan")}, {"x": "\ud800"}, ["not", "a", "mapping"]]
)
def test_bad_extra_fields_are_malformed_card_errors(extra: Any) -> None:
    with pytest.raises(MalformedCardError):
        create_raw_card(generate_key_pair().private_key, "alice", extra_fields=extra)


def test_unencodable_identity_is_a_malformed_card_error() -> None:
    with pytest.raises(MalformedCardError):
        create_raw_card(generate_key_pair().private_key, "\ud800")


@pytest.mark.parametrize("moment", [float("nan"), float("inf"), True, "2024-01-01"])
def test_card_active_at_refuses_non_moments(moment: Any) -> None:
    card = Card.from_raw(create_raw_card(generate_key_pair().private_key, "a", created_at=1))
    with pytest.raises(CardNotActiveError):
        card_active_at(card, moment)
