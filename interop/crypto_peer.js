// virgil-crypto (Virgil's JS library, WASM build of their C code) as an interop peer.
// stdin: {"ops": [op, ...]}; stdout: {"results": [result, ...]} (binary values in base64).
// ops:
//   {"op": "generate", "count": n}                       -> {"keys": [{"private", "public"}]}
//   {"op": "encrypt" | "signThenEncrypt" | "signAndEncrypt", "data", "signer"?, "recipients": [pub], "padding"}
//                                                         -> {"data"}
//   {"op": "decrypt" | "decryptThenVerify" | "decryptAndVerify", "data", "private", "signers"?: [pub]}
//                                                         -> {"data"} or {"error"}
//   {"op": "bench", "recipients": n, "size": bytes, "iterations": k, "decrypt_iterations": k2,
//    "repeats": r}
//                                                         -> {"encrypt_ms", "decrypt_ms", "message_bytes"}
'use strict';

const { initCrypto, VirgilCrypto } = require('virgil-crypto');

function readStdin() {
  return new Promise((resolve) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

const b64 = (buf) => Buffer.from(buf).toString('base64');
const raw = (s) => Buffer.from(s, 'base64');

function run(crypto, op) {
  const pubs = (list) => (list || []).map((k) => crypto.importPublicKey(raw(k)));
  switch (op.op) {
    case 'generate': {
      const keys = [];
      for (let i = 0; i < (op.count || 1); i += 1) {
        const kp = crypto.generateKeys();
        keys.push({
          private: b64(crypto.exportPrivateKey(kp.privateKey)),
          public: b64(crypto.exportPublicKey(kp.publicKey)),
        });
      }
      return { keys };
    }
    case 'encrypt':
      return { data: b64(crypto.encrypt(raw(op.data), pubs(op.recipients), !!op.padding)) };
    case 'signThenEncrypt':
    case 'signAndEncrypt': {
      const signer = crypto.importPrivateKey(raw(op.signer));
      return { data: b64(crypto[op.op](raw(op.data), signer, pubs(op.recipients), !!op.padding)) };
    }
    case 'decrypt':
    case 'decryptThenVerify':
    case 'decryptAndVerify': {
      try {
        const me = crypto.importPrivateKey(raw(op.private));
        const out = op.op === 'decrypt'
          ? crypto.decrypt(raw(op.data), me)
          : crypto[op.op](raw(op.data), me, pubs(op.signers));
        return { data: b64(out) };
      } catch (e) {
        return { error: String(e && e.message ? e.message : e) };
      }
    }
    case 'bench': {
      // signAndEncrypt with padding (E3Kit authEncrypt) to the sender + n recipients; best of
      // `repeats` runs of `iterations` messages, in ms per message.
      const sender = crypto.generateKeys();
      const recipients = [sender.publicKey];
      let first = null;
      for (let i = 0; i < op.recipients; i += 1) {
        const kp = crypto.generateKeys();
        if (first === null) first = kp;
        recipients.push(kp.publicKey);
      }
      const data = Buffer.alloc(op.size, 7);
      const best = (fn, iterations) => {
        let min = Infinity;
        for (let r = 0; r < (op.repeats || 5); r += 1) {
          const t0 = process.hrtime.bigint();
          for (let i = 0; i < iterations; i += 1) fn();
          min = Math.min(min, Number(process.hrtime.bigint() - t0) / 1e6 / iterations);
        }
        return min;
      };
      const msg = crypto.signAndEncrypt(data, sender.privateKey, recipients, true);
      const enc = best(() => crypto.signAndEncrypt(data, sender.privateKey, recipients, true),
        op.iterations);
      const dec = best(() => crypto.decryptAndVerify(msg, first.privateKey, sender.publicKey),
        op.decrypt_iterations || op.iterations);
      return { encrypt_ms: enc, decrypt_ms: dec, message_bytes: msg.length };
    }
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

(async () => {
  const input = JSON.parse(await readStdin());
  await initCrypto();
  const crypto = new VirgilCrypto();
  const results = input.ops.map((op) => run(crypto, op));
  process.stdout.write(JSON.stringify({ results }));
})().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
