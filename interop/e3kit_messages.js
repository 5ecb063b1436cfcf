// A real E3Kit client (@virgilsecurity/e3kit-node) exchanging authEncrypt messages with twilio_e2ee.
//
// Reads JSON on stdin, writes JSON on stdout. Tokens come from OUR backend, as in Virgil's Twilio
// demo: POST /authenticate {identity} -> {authToken}; GET /virgil-jwt (Bearer) -> {virgilToken}.
//
// Input: { apiUrl, backendUrl, identity, peer, storageDir, phase, ... }
//   phase "register": register (if no local key yet), find the peer's card, authEncrypt
//                     `plaintext` to it -> { cardId, peerCardId, ciphertext }
//                     (also `legacyCiphertext`: the deprecated encrypt, signThenEncrypt)
//   phase "read":     find the peer's card, authDecrypt `ciphertext` (and decrypt
//                     `legacyCiphertext` if given) -> { plaintext, legacyPlaintext }
//   phase "rotate":   cleanup + rotatePrivateKey, authEncrypt `plaintext` -> { cardId, ciphertext }
// Run with node --no-experimental-fetch (Virgil's old WASM loader needs it on Node 18+).
'use strict';

const http = require('http');
const path = require('path');
const { EThree } = require('@virgilsecurity/e3kit-node');

function request(method, url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      url,
      {
        method,
        headers: {
          ...headers,
          ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode < 200 || res.statusCode >= 300) {
            reject(new Error(`${method} ${url} -> ${res.statusCode}: ${text}`));
            return;
          }
          try {
            resolve(JSON.parse(text));
          } catch (e) {
            reject(new Error(`${method} ${url}: not JSON: ${text}`));
          }
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const { apiUrl, backendUrl, identity, peer, storageDir, phase } = input;

  const { authToken } = await request('POST', `${backendUrl}/authenticate`, { identity });
  const getToken = async () => {
    const { virgilToken } = await request('GET', `${backendUrl}/virgil-jwt`, undefined, {
      Authorization: `Bearer ${authToken}`,
    });
    return virgilToken;
  };

  const ethree = await EThree.initialize(getToken, {
    apiUrl,
    storageName: path.join(storageDir, 'keys'),
    groupStorageName: path.join(storageDir, 'groups'),
  });

  const out = { identity: ethree.identity };
  if (phase === 'register') {
    if (!(await ethree.hasLocalPrivateKey())) {
      await ethree.register();
    }
    const peerCard = await ethree.findUsers(peer);
    const own = await ethree.findUsers(identity);
    out.cardId = own.id;
    out.peerCardId = peerCard.id;
    out.ciphertext = await ethree.authEncrypt(input.plaintext, peerCard);
    out.legacyCiphertext = await ethree.encrypt(input.plaintext, peerCard); // deprecated form
  } else if (phase === 'read') {
    const peerCard = await ethree.findUsers(peer);
    out.peerCardId = peerCard.id;
    out.plaintext = await ethree.authDecrypt(input.ciphertext, peerCard);
    if (input.legacyCiphertext) {
      out.legacyPlaintext = await ethree.decrypt(input.legacyCiphertext, peerCard);
    }
  } else if (phase === 'rotate') {
    // The key is lost on this device: E3Kit's way out is a new card superseding the old one.
    await ethree.cleanup();
    await ethree.rotatePrivateKey();
    const peerCard = await ethree.findUsers(peer);
    out.cardId = (await ethree.findUsers(identity)).id;
    out.ciphertext = await ethree.authEncrypt(input.plaintext, peerCard);
  } else {
    throw new Error(`unknown phase ${phase}`);
  }
  process.stdout.write(JSON.stringify(out));
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
