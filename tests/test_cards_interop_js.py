"""Cards interop with Virgil's own JS SDK (virgil-sdk 6 under Node.js), both directions.

Our cards are imported and verified by virgil-sdk's CardManager / VirgilCardVerifier (with the
service key set to ours); cards made and signed by virgil-sdk (its own snapshot key order) are
imported and verified by our parser and CardVerifier, with the same card ids.
Skipped, with the reason, when Node.js or virgil-sdk is missing.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.nodepeer import INTEROP, NODE_FLAGS, require_node_peer
from twilio_e2ee.cards import (
    CardSignatureInvalidError,
    CardVerifier,
    RawSignedModel,
    create_raw_card,
    import_card,
    linked_card_list,
)
from twilio_e2ee.crypto import export_private_key, generate_key_pair

pytestmark = pytest.mark.interop

SCRIPT = r"""
'use strict';
const path = require('path');
const nm = (m) => require(path.join(process.env.INTEROP_DIR, 'node_modules', m));
const { initCrypto, VirgilCrypto } = nm('virgil-crypto');
const { VirgilCardCrypto } = nm('@virgilsecurity/sdk-crypto');
const { CardManager, VirgilCardVerifier, ModelSigner } = nm('virgil-sdk');

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  await initCrypto();
  const crypto = new VirgilCrypto();
  const cardCrypto = new VirgilCardCrypto(crypto);
  const verifier = new VirgilCardVerifier(cardCrypto, {
    verifySelfSignature: true, verifyVirgilSignature: true,
  });
  verifier.virgilCardsPublicKey = crypto.importPublicKey(input.service_public);
  const manager = new CardManager({
    cardCrypto, cardVerifier: verifier, retryOnUnauthorized: false,
  });
  const imported = input.ours.map((s) => {
    try {
      const c = manager.importCardFromString(s);
      return { id: c.id, identity: c.identity, created_at: c.createdAt.getTime() / 1000,
               previous: c.previousCardId || null,
               public_key: crypto.exportPublicKey(c.publicKey).toString('base64') };
    } catch (e) {
      return { error: String(e.name || e) };
    }
  });
  const servicePrivate = crypto.importPrivateKey(input.service_private);
  const signer = new ModelSigner(cardCrypto);
  const made = [];
  let previousCardId;
  for (const identity of input.make) {
    const kp = crypto.generateKeys();
    const model = manager.generateRawCard({
      privateKey: kp.privateKey, publicKey: kp.publicKey, identity, previousCardId,
      extraFields: { device: 'node' },
    });
    signer.sign({ model, signer: 'virgil', signerPrivateKey: servicePrivate });
    const card = manager.importCard(model);
    previousCardId = card.id;
    made.push({ string: model.toString(), id: card.id,
                public_key: crypto.exportPublicKey(kp.publicKey).toString('base64') });
  }
  process.stdout.write(JSON.stringify({ imported, made }));
}
main().catch((e) => { console.error(e); process.exit(1); });
"""


def run_peer(tmp_path: Path, payload: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    node = require_node_peer("virgil-sdk")
    if not (INTEROP / "node_modules" / "@virgilsecurity" / "sdk-crypto").exists():
        pytest.skip("npm package @virgilsecurity/sdk-crypto not installed in interop/")
    script = tmp_path / "cards_peer.js"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [node, *NODE_FLAGS, str(script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=INTEROP,
        env={**os.environ, "INTEROP_DIR": str(INTEROP)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, list[dict[str, object]]] = json.loads(proc.stdout)
    return result


def test_cards_round_trip_with_virgil_sdk_js(tmp_path: Path) -> None:
    service = generate_key_pair().private_key
    alice_key = generate_key_pair().private_key
    ours = create_raw_card(alice_key, "alice", extra_fields={"device": "python"}).add_signature(
        "virgil", service
    )
    rotated = create_raw_card(
        generate_key_pair().private_key, "alice", previous_card_id=ours.card_id
    ).add_signature("virgil", service)
    unsigned = create_raw_card(generate_key_pair().private_key, "eve")  # no service signature
    forged = RawSignedModel(
        ours.content_snapshot.replace(b'"alice"', b'"mallo"'), ours.signatures
    )  # tampered
    result = run_peer(
        tmp_path,
        {
            "service_public": base64.b64encode(service.public_key.der).decode(),
            "service_private": base64.b64encode(export_private_key(service)).decode(),
            "ours": [m.to_string() for m in (ours, rotated, unsigned, forged)],
            "make": ["bob", "bob"],
        },
    )
    # Virgil's SDK accepts our cards, with the same ids, keys, times and chain...
    ok, rot, bad1, bad2 = result["imported"]
    assert ok["id"] == ours.card_id and ok["identity"] == "alice"
    assert ok["public_key"] == base64.b64encode(alice_key.public_key.der).decode()
    assert ok["created_at"] == import_card(ours).created_at
    assert rot["id"] == rotated.card_id and rot["previous"] == ours.card_id
    # ...and refuses the unsigned and the tampered one, as ours does.
    assert "error" in bad1 and "error" in bad2
    # Cards made by Virgil's SDK: our parser and verifier accept them, same ids, chain linked.
    verifier = CardVerifier(service.public_key)
    made = [import_card(m["string"]) for m in result["made"]]  # type: ignore[arg-type]
    for card, theirs in zip(made, result["made"], strict=True):
        verifier.verify(card)
        assert card.id == theirs["id"] and card.identity == "bob"
        assert base64.b64encode(card.public_key.der).decode() == theirs["public_key"]
        sig = card.raw.signature("self")
        assert sig is not None and sig.extra_fields == {"device": "node"}
    (head,) = linked_card_list(made)
    assert head.id == made[1].id and head.previous_card == made[0]
    # Their snapshot is kept verbatim (JS key order), never rewritten.
    assert made[0].content_snapshot.startswith(b'{"identity":"bob"')
    with pytest.raises(CardSignatureInvalidError):
        CardVerifier(generate_key_pair().public_key).verify(made[0])
