// A real E3Kit client (@virgilsecurity/e3kit-node 2.5.1) against the mock Cards service.
//
// Reads JSON on stdin, writes JSON on stdout. Virgil JWTs are minted in Python and passed in:
// the token callback returns the token of the EThree instance's identity.
//
// Input:  { apiUrl, storageDir, tokens: {identity: jwt}, register: [identity...],
//           rotate: [identity...], unregister: [identity...], finder: identity, find: [identity...] }
//   register → rotate (cleanup + rotatePrivateKey) → unregister (revoke) → finder.findUsers(find)
// Output: { registered: {identity: {cardId, publicKey}}, rotated: {identity: {cardId, ...}},
//           found: {identity: {cardId, publicKey, previousCardId, isOutdated}},
//           notFound: [identity...] | null }
// publicKey is base64 SubjectPublicKeyInfo DER. Each EThree instance gets its own storageName
// and groupStorageName (LevelDB locks otherwise). Run with node --no-experimental-fetch.
'use strict';

const fs = require('fs');
const path = require('path');
const { EThree } = require('@virgilsecurity/e3kit-node');

const instances = new Map(); // one EThree per identity (its LevelDB storage is locked)

async function open(input, identity) {
  if (instances.has(identity)) return instances.get(identity);
  const token = input.tokens[identity];
  if (!token) throw new Error(`no token for ${identity}`);
  const dir = path.join(input.storageDir, Buffer.from(identity).toString('hex'));
  const sdk = await EThree.initialize(async () => token, {
    apiUrl: input.apiUrl,
    storageName: path.join(dir, 'keys'),
    groupStorageName: path.join(dir, 'groups'),
  });
  instances.set(identity, sdk);
  return sdk;
}

function describe(sdk, card) {
  return {
    cardId: card.id,
    publicKey: sdk.virgilCrypto.exportPublicKey(card.publicKey).toString('base64'),
    previousCardId: card.previousCardId || null,
    isOutdated: Boolean(card.isOutdated),
  };
}

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const out = { registered: {}, rotated: {}, found: {}, notFound: null };
  for (const identity of input.register || []) {
    const sdk = await open(input, identity);
    await sdk.register();
    const own = await sdk.findUsers(identity);
    out.registered[identity] = describe(sdk, own);
  }
  for (const identity of input.rotate || []) {
    const sdk = await open(input, identity);
    await sdk.cleanup();
    await sdk.rotatePrivateKey();
    out.rotated[identity] = describe(sdk, await sdk.findUsers(identity, { forceReload: true }));
  }
  for (const identity of input.unregister || []) {
    const sdk = await open(input, identity);
    await sdk.unregister();
  }
  if (input.finder) {
    const sdk = await open(input, input.finder);
    try {
      const cards = await sdk.findUsers(input.find);
      for (const identity of Object.keys(cards)) out.found[identity] = describe(sdk, cards[identity]);
    } catch (e) {
      if (e.name !== 'UsersNotFoundError') throw e;
      out.notFound = e.identities;
    }
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
