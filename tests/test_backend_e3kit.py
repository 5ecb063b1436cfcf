"""A real E3Kit client (@virgilsecurity/e3kit-node) gets its tokens from our backend, unchanged.

The Node script does what the front-end of Virgil's Twilio sample does: ``POST /authenticate
{identity}`` (development mode) or ``{identity, password}``, then a ``tokenCallback`` that calls
``GET /virgil-jwt`` with ``Authorization: Bearer <authToken>`` and returns ``virgilToken``. E3Kit
then registers and finds users on the mock Cards service, which verifies those JWTs.
Skipped, with the reason, when Node.js or e3kit-node is missing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from mock_services.cards import MockCardsService
from tests.nodepeer import INTEROP, NODE_FLAGS, require_node_peer
from twilio_e2ee.backend import Backend, BackendConfig, create_backend_app
from twilio_e2ee.credentials import generate_development_credentials
from twilio_e2ee.servers import ServerThread

pytestmark = pytest.mark.interop

SCRIPT = r"""
const http = require('http');
const path = require('path');
const { EThree } = require('@virgilsecurity/e3kit-node');

function call(base, method, route, body, token) {
  return new Promise((resolve, reject) => {
    const url = new URL(route, base);
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', async () => {
  try {
    const req = JSON.parse(input);
    const out = { users: {} };
    for (const user of req.users) {
      // The sample front-end: POST /authenticate, then the token callback hits /virgil-jwt.
      const auth = await call(req.backendUrl, 'POST', '/authenticate', user.credentials);
      if (auth.status !== 200) { out.users[user.credentials.identity] = { auth }; continue; }
      const authToken = auth.body.authToken;
      const getToken = async () => {
        const r = await call(req.backendUrl, 'GET', '/virgil-jwt', undefined, authToken);
        if (r.status !== 200) throw new Error(`virgil-jwt: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body.virgilToken;
      };
      const dir = path.join(req.storageDir, Buffer.from(user.credentials.identity).toString('hex'));
      const sdk = await EThree.initialize(getToken, {
        apiUrl: req.cardsUrl,
        storageName: path.join(dir, 'keys'),
        groupStorageName: path.join(dir, 'groups'),
      });
      await sdk.register();
      out.users[user.credentials.identity] = { identity: sdk.identity, status: 200 };
      out.finder = sdk;
    }
    const finder = out.finder;
    delete out.finder;
    const cards = await finder.findUsers(req.find);
    out.found = Object.fromEntries(
      Object.entries(cards).map(([id, card]) => [id, card.identity]));
    process.stdout.write(JSON.stringify(out));
  } catch (e) {
    process.stderr.write(String(e && e.stack || e));
    process.exit(1);
  }
});
"""

PASSWORD = "correct horse battery"


@pytest.fixture
def stack() -> Iterator[tuple[str, str, Backend, MockCardsService]]:
    creds = generate_development_credentials()
    v = creds.virgil
    cards = MockCardsService(v.app_id, v.app_key_id, v.app_public_key)
    app = create_backend_app(
        BackendConfig(
            creds,
            development=True,
            password_hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        )
    )
    with (
        ServerThread(cards.app, name="cards") as cards_server,
        ServerThread(app, name="backend") as backend_server,
    ):
        yield backend_server.url, cards_server.url, app.state.backend, cards


def run_e3kit(payload: dict[str, Any]) -> dict[str, Any]:
    node = require_node_peer("@virgilsecurity/e3kit-node")
    proc = subprocess.run(
        [node, *NODE_FLAGS, "-e", SCRIPT],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=INTEROP,
    )
    if proc.returncode != 0:
        raise AssertionError(f"node failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_e3kit_front_end_works_unchanged_with_our_backend(stack: Any, tmp_path: Path) -> None:
    backend_url, cards_url, backend, cards = stack
    # One user the sample way (password-less, development mode), one with a password.
    signup = backend.users.create("bob", PASSWORD)
    assert signup.identity == "bob"
    result = run_e3kit(
        {
            "backendUrl": backend_url,
            "cardsUrl": cards_url,
            "storageDir": str(tmp_path),
            "users": [
                {"credentials": {"identity": "alice"}},
                {"credentials": {"identity": "bob", "password": PASSWORD}},
                {"credentials": {"identity": "bob"}},  # password-less refused: bob has one
            ],
            "find": ["alice", "bob"],
        }
    )
    assert result["users"]["alice"] == {"identity": "alice", "status": 200}
    assert result["found"] == {"alice": "alice", "bob": "bob"}  # bob registered with a password
    # The later password-less attempt for bob (it has a password) was refused, even in dev mode.
    assert result["users"]["bob"]["auth"]["status"] == 401
    assert backend.mints["virgil"] >= 2
    # The mock Cards service saw both identities, taken from our backend's JWTs.
    published = {
        e.identity for e in cards.journal.entries if e.path == "/card/v5" and e.status < 300
    }
    assert published == {"alice", "bob"}
