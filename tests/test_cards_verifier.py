"""CardVerifier: self and service signatures, allow-lists, and refusal of forged cards."""

from __future__ import annotations

import json
from typing import Any

import pytest

from twilio_e2ee.cards import (
    Card,
    CardSignatureInvalidError,
    CardSignatureMissingError,
    CardVerifier,
    CardWhitelistError,
    RawSignature,
    RawSignedModel,
    SecurityWarning,
    create_raw_card,
    import_card,
    virgil_service_public_key,
)
from twilio_e2ee.crypto import PrivateKey, generate_key_pair, import_public_key
from twilio_e2ee.errors import CardVerificationError

SERVICE = generate_key_pair().private_key


def service_signed(
    key: PrivateKey | None = None, identity: str = "alice", service: PrivateKey = SERVICE
) -> Card:
    key = key or generate_key_pair().private_key
    model = create_raw_card(key, identity).add_signature("virgil", service)
    return import_card(model.to_string())


def test_default_service_key_is_virgils() -> None:
    assert CardVerifier().service_public_key == virgil_service_public_key()
    assert virgil_service_public_key() == import_public_key(
        "MCowBQYDK2VwAyEAljOYGANYiVq1WbvVvoYIKtvZi2ji9bAhxyu6iV/LF8M="
    )


def test_valid_card_passes() -> None:
    verifier = CardVerifier(SERVICE.public_key)
    card = service_signed()
    verifier.verify(card)
    assert verifier.is_valid(card)


def test_stc4_under_its_own_key_as_service(vectors: dict[str, Any]) -> None:
    # In Virgil's STC-4 the card key also signed as "virgil".
    card = import_card(vectors["sdk"]["STC-4.as_json"])
    CardVerifier(vectors["sdk"]["STC-4.public_key_base64"]).verify(card)
    with pytest.raises(CardSignatureInvalidError):
        CardVerifier().verify(card)  # not signed by Virgil's production service


def test_wrong_service_key_refused() -> None:
    card = service_signed(service=generate_key_pair().private_key)
    with pytest.raises(CardSignatureInvalidError, match="service"):
        CardVerifier(SERVICE.public_key).verify(card)


def test_missing_service_signature_refused() -> None:
    card = import_card(create_raw_card(generate_key_pair().private_key, "a").to_json())
    with pytest.raises(CardSignatureMissingError):
        CardVerifier(SERVICE.public_key).verify(card)


def test_forged_self_signature_refused() -> None:
    victim = generate_key_pair().private_key
    attacker = generate_key_pair().private_key
    honest = create_raw_card(victim, "alice", created_at=100)
    # The attacker signs the victim's snapshot with their own key: self signature must fail.
    forged = RawSignedModel(honest.content_snapshot).add_signature("self", attacker)
    forged = forged.add_signature("virgil", SERVICE)
    with pytest.raises(CardSignatureInvalidError, match="self"):
        CardVerifier(SERVICE.public_key).verify(import_card(forged.to_json()))


def test_tampered_snapshot_refused() -> None:
    card = service_signed(identity="alice")
    text = card.content_snapshot.replace(b'"alice"', b'"alicf"')
    tampered = RawSignedModel(text, card.signatures)
    assert tampered.card_id != card.id
    with pytest.raises(CardVerificationError):
        CardVerifier(SERVICE.public_key).verify(import_card(tampered.to_json()))


def test_extra_snapshot_is_signed() -> None:
    key = generate_key_pair().private_key
    model = create_raw_card(key, "a", extra_fields={"role": "user"}).add_signature(
        "virgil", SERVICE
    )
    sig = model.signature("self")
    assert sig is not None
    swapped = RawSignature("self", sig.signature, json.dumps({"role": "admin"}).encode())
    bad = RawSignedModel(model.content_snapshot, (swapped, *model.signatures[1:]))
    CardVerifier(SERVICE.public_key).verify(import_card(model.to_json()))
    with pytest.raises(CardSignatureInvalidError):
        CardVerifier(SERVICE.public_key).verify(import_card(bad.to_json()))


def test_whitelists() -> None:
    app = generate_key_pair().private_key
    other = generate_key_pair().private_key
    key = generate_key_pair().private_key
    base = create_raw_card(key, "a").add_signature("virgil", SERVICE)
    signed = import_card(base.add_signature("my-app", app).to_json())
    wrongly = import_card(base.add_signature("my-app", other).to_json())
    unsigned = import_card(base.to_json())
    verifier = CardVerifier(
        SERVICE.public_key,
        whitelists=[[("my-app", app.public_key), ("backup-app", other.public_key)]],
    )
    verifier.verify(signed)
    with pytest.raises(CardWhitelistError, match="no valid signature"):
        verifier.verify(wrongly)
    with pytest.raises(CardWhitelistError, match="no signature"):
        verifier.verify(unsigned)
    # Two lists must both be satisfied.
    two = CardVerifier(
        SERVICE.public_key, whitelists=[[("my-app", app.public_key)], [("x", other.public_key)]]
    )
    with pytest.raises(CardWhitelistError):
        two.verify(signed)
    with pytest.raises(CardVerificationError):
        CardVerifier(SERVICE.public_key, whitelists=[[]])


def test_disabling_a_check_is_explicit_and_warns() -> None:
    card = import_card(create_raw_card(generate_key_pair().private_key, "a").to_json())
    with pytest.warns(SecurityWarning):
        lax = CardVerifier(verify_service_signature=False)
    lax.verify(card)


def test_verify_all_checks_chain_links() -> None:
    k1 = generate_key_pair().private_key
    old = service_signed(k1, "bob")
    head_model = create_raw_card(generate_key_pair().private_key, "bob", previous_card_id=old.id)
    head = import_card(head_model.add_signature("virgil", SERVICE).to_json())
    forged_old = import_card(
        RawSignedModel(old.content_snapshot, old.signatures[:1]).to_json()
    )  # service signature stripped
    from twilio_e2ee.cards import linked_card_list

    verifier = CardVerifier(SERVICE.public_key)
    verifier.verify_all(linked_card_list([head, old]))
    with pytest.raises(CardSignatureMissingError):
        verifier.verify_all(linked_card_list([head, forged_old]))


@pytest.mark.parametrize("whitelists", [5, None, [5], [[("signer", 5)]]])
def test_malformed_whitelists_are_verification_errors(whitelists: Any) -> None:
    with pytest.raises(CardVerificationError):
        CardVerifier(generate_key_pair().public_key, whitelists=whitelists)
