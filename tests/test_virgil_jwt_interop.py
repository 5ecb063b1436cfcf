"""Virgil JWTs against Virgil's own JS SDK (virgil-sdk JwtGenerator / JwtVerifier + virgil-crypto).

Both directions: the JS generator's token verifies here and is reproduced byte for byte (same
key order, deterministic Ed25519); our tokens pass the JS verifier and tampered ones do not.
Skipped, with the reason, when Node.js or the npm packages are missing.
"""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import pytest

from tests.nodepeer import INTEROP, NODE_FLAGS, require_node_peer
from twilio_e2ee.credentials import generate_development_credentials
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt, parse_virgil_jwt, verify_virgil_jwt

pytestmark = pytest.mark.interop

SCRIPT = r"""
const { initCrypto, VirgilCrypto, VirgilAccessTokenSigner } = require('virgil-crypto');
const { JwtGenerator, JwtVerifier, Jwt } = require('virgil-sdk');
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', async () => {
  try {
    const req = JSON.parse(input);
    await initCrypto();
    const crypto = new VirgilCrypto();
    const privateKey = crypto.importPrivateKey(req.privateKey);
    const publicKey = crypto.extractPublicKey(privateKey);
    const signer = new VirgilAccessTokenSigner(crypto);
    const generator = new JwtGenerator({
      appId: req.appId, apiKey: privateKey, apiKeyId: req.keyId,
      accessTokenSigner: signer, millisecondsToLive: req.ttl * 1000,
    });
    const verifier = new JwtVerifier({
      accessTokenSigner: signer, apiPublicKey: publicKey, apiKeyId: req.keyId,
    });
    const generated = generator.generateToken(req.identity, req.ada).toString();
    const verdicts = req.verify.map((t) => {
      try { return verifier.verifyToken(Jwt.fromString(t)); } catch (e) { return false; }
    });
    const identities = req.verify.map((t) => {
      try { return Jwt.fromString(t).identity(); } catch (e) { return null; }
    });
    process.stdout.write(JSON.stringify({ generated, verdicts, identities }));
  } catch (e) {
    process.stderr.write(String(e && e.stack || e));
    process.exit(1);
  }
});
"""


def run_js(payload: dict[str, Any]) -> dict[str, Any]:
    node = require_node_peer("virgil-sdk")
    require_node_peer("virgil-crypto")
    proc = subprocess.run(
        [node, *NODE_FLAGS, "-e", SCRIPT],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=INTEROP,
    )
    if proc.returncode != 0:
        raise AssertionError(f"node failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def flip_last_signature_byte(token: str) -> str:
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[-1] ^= 1
    return f"{head}.{body}." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_js_and_python_virgil_jwts_interoperate() -> None:
    app = generate_development_credentials().virgil
    ours = generate_virgil_jwt(app, "ålice", additional_data={"device": "py"})
    other_app = generate_development_credentials().virgil
    foreign = generate_virgil_jwt(other_app, "alice")  # another key
    payload: dict[str, Any] = {
        "privateKey": base64.b64encode(app.app_key.der).decode(),
        "appId": app.app_id,
        "keyId": app.app_key_id,
        "ttl": 1200,
        "identity": "bøb",  # Latin-1: the most the JS SDK can encode
        "ada": {"device": "js"},
        "verify": [ours, flip_last_signature_byte(ours), foreign],
    }
    result = run_js(payload)
    # Our token passes Virgil's JwtVerifier; tampered and foreign ones do not.
    assert result["verdicts"] == [True, False, False]
    assert result["identities"][0] == "ålice"
    # Virgil's token passes ours ...
    js = result["generated"]
    jwt = verify_virgil_jwt(
        js, app_public_key=app.app_public_key, app_key_id=app.app_key_id, app_id=app.app_id
    )
    assert jwt.identity == "bøb" and jwt.additional_data == {"device": "js"}
    assert jwt.expires_at - jwt.issued_at == 1200
    # ... and for an ASCII identity ours, minted with the same claims, is the very same string.
    result = run_js({**payload, "identity": "bob", "verify": []})
    js = result["generated"]
    jwt = verify_virgil_jwt(js, app_public_key=app.app_public_key, app_key_id=app.app_key_id)
    again = generate_virgil_jwt(
        app,
        "bob",
        ttl=jwt.expires_at - jwt.issued_at,
        additional_data={"device": "js"},
        now=jwt.issued_at,
    )
    assert again == js
    assert parse_virgil_jwt(again).header == parse_virgil_jwt(js).header
