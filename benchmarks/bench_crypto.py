"""Benchmark: auth_encrypt / auth_decrypt of 1 KiB against Virgil's C library and virgil-crypto JS.

Usage: ``.venv/bin/python benchmarks/bench_crypto.py [--quick]`` (or ``make bench``).

Rows: E3Kit's authEncrypt (signAndEncrypt with padding) to 1 recipient plus the sender, and to
100 recipients plus the sender; decryption by one recipient of each. Each figure is the best of
several runs (ms per message), measured in one process run side by side: ours, Virgil's C library
(virgil-crypto-lib, in process) and virgil-crypto JS (Node.js, timed inside Node). The ratio is
ours / the faster of the two (< 1 means we are faster). A peer that is missing is reported, not
faked.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "interop"))

from twilio_e2ee.crypto import auth_decrypt, auth_encrypt, generate_key_pair  # noqa: E402

SIZE = 1024


def best_ms(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Best of `repeat` runs of `number` calls, in ms per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e3


def bench_ours(n: int, number: int, repeat: int) -> tuple[float, float]:
    sender = generate_key_pair()
    recipients = [generate_key_pair() for _ in range(n)]
    keys = [sender.public_key] + [r.public_key for r in recipients]
    data = bytes(SIZE)
    message = auth_encrypt(data, sender.private_key, keys)
    me = recipients[-1].private_key
    assert auth_decrypt(message, me, sender.public_key) == data
    enc = best_ms(lambda: auth_encrypt(data, sender.private_key, keys), number, repeat)
    dec = best_ms(lambda: auth_decrypt(message, me, sender.public_key), number * 4, repeat)
    return enc, dec


def bench_c(n: int, number: int, repeat: int) -> tuple[float, float] | str:
    try:
        from crypto_peer_c import VirgilCPeer
    except ImportError as exc:
        return f"virgil-crypto-lib missing ({exc})"
    peer = VirgilCPeer()
    sender_priv, sender_pub = peer.generate()
    signer = peer.private_key(sender_priv)
    keys = [peer.public_key(sender_pub)]
    first = None
    for _ in range(n):
        priv, pub = peer.generate()
        first = first or peer.private_key(priv)
        keys.append(peer.public_key(pub))
    assert first is not None
    data = bytes(SIZE)
    message = peer.sign_and_encrypt(data, signer, keys, padding=True)
    sender = [keys[0]]
    assert peer.decrypt_and_verify(message, first, sender) == data
    enc = best_ms(lambda: peer.sign_and_encrypt(data, signer, keys, padding=True), number, repeat)
    dec = best_ms(lambda: peer.decrypt_and_verify(message, first, sender), number * 4, repeat)
    return enc, dec


def bench_js(rows: list[int], number: int, repeat: int) -> dict[int, tuple[float, float]] | str:
    node = shutil.which("node")
    if node is None:
        return "Node.js not found"
    if not (ROOT / "interop" / "node_modules" / "virgil-crypto" / "package.json").exists():
        return "virgil-crypto not installed in interop/ (run `make node`)"
    ops = [
        {"op": "bench", "recipients": n, "size": SIZE, "iterations": number, "repeats": repeat}
        for n in rows
    ]
    proc = subprocess.run(
        [node, "--no-experimental-fetch", str(ROOT / "interop" / "crypto_peer.js")],
        input=json.dumps({"ops": ops}),
        capture_output=True,
        text=True,
        cwd=ROOT / "interop",
        timeout=600,
    )
    if proc.returncode != 0:
        return f"node failed: {proc.stderr.strip()[-300:]}"
    results: list[dict[str, Any]] = json.loads(proc.stdout)["results"]
    return {n: (r["encrypt_ms"], r["decrypt_ms"]) for n, r in zip(rows, results, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (noisier)")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    plan = {1: 60 if args.quick else 200, 100: 2 if args.quick else 6}

    ours = {n: bench_ours(n, number, repeat) for n, number in plan.items()}
    theirs_c = {n: bench_c(n, number, repeat) for n, number in plan.items()}
    js_all = bench_js(list(plan), max(plan[1] // 2, 20), repeat)

    print(f"# auth_encrypt / auth_decrypt of {SIZE} B, ms per message (best of {repeat} runs)")
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    header = f"{'operation':32s} {'ours':>9s} {'C lib':>9s} {'JS':>9s} {'ours/best':>10s}"
    print(header)
    print("-" * len(header))
    notes: list[str] = []
    for n in plan:
        for i, op in enumerate(("auth_encrypt", "auth_decrypt")):
            label = f"{op} to {n} + sender"
            c = theirs_c[n]
            js = js_all.get(n) if isinstance(js_all, dict) else None
            c_ms = c[i] if isinstance(c, tuple) else None
            js_ms = js[i] if js is not None else None
            peers = [x for x in (c_ms, js_ms) if x is not None]
            ratio = f"{ours[n][i] / min(peers):10.2f}" if peers else f"{'n/a':>10s}"
            fmt = lambda x: f"{x:9.3f}" if x is not None else f"{'n/a':>9s}"  # noqa: E731
            print(f"{label:32s} {ours[n][i]:9.3f} {fmt(c_ms)} {fmt(js_ms)} {ratio}")
        if isinstance(theirs_c[n], str):
            notes.append(f"C lib: {theirs_c[n]}")
    if isinstance(js_all, str):
        notes.append(f"JS: {js_all}")
    flat = ours[max(plan)][1] / ours[1][1]
    print(f"\ndecrypt cost, {max(plan)} vs 1 recipients: x{flat:.2f} (flat = 1.0)")
    for note in dict.fromkeys(notes):
        print(f"note: {note}")


if __name__ == "__main__":
    main()
