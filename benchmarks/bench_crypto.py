"""Benchmark: auth_encrypt / auth_decrypt of 1 KiB against Virgil's C library and virgil-crypto JS.

Usage: ``.venv/bin/python benchmarks/bench_crypto.py [--quick] [--rounds N]`` (or ``make bench``).

Rows: E3Kit's authEncrypt (signAndEncrypt with padding) to 1 recipient plus the sender, and to
100 recipients plus the sender; decryption by one recipient of each. Each figure is the best of
several runs (ms per message), measured in one process run side by side: ours, Virgil's C library
(virgil-crypto-lib, in process) and virgil-crypto JS (Node.js, timed inside Node), in interleaved
rounds so that load on a shared machine hits all three alike. The ratio is ours / the faster of
the two (< 1 means we are faster). A peer that is missing is reported, not faked.
"""

from __future__ import annotations

import argparse
import json
import os
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


# (encrypt iterations, decrypt iterations) per timed run: the same run lengths for every
# implementation, so that each sees the same chance of a quiet moment on a shared machine.
PLAN = {1: (50, 100), 100: (3, 100)}
QUICK_PLAN = {1: (20, 40), 100: (2, 40)}
Row = tuple[float, float]


def bench_ours(n: int, iters: tuple[int, int], repeat: int, *, reader: int = 0) -> Row:
    """Our times; the decrypting recipient is ``recipients[reader]`` (the peers use the first)."""
    sender = generate_key_pair()
    recipients = [generate_key_pair() for _ in range(n)]
    keys = [sender.public_key] + [r.public_key for r in recipients]
    data = bytes(SIZE)
    message = auth_encrypt(data, sender.private_key, keys)
    me = recipients[reader].private_key
    assert auth_decrypt(message, me, sender.public_key) == data
    enc = best_ms(lambda: auth_encrypt(data, sender.private_key, keys), iters[0], repeat)
    dec = best_ms(lambda: auth_decrypt(message, me, sender.public_key), iters[1], repeat)
    return enc, dec


def bench_c(n: int, iters: tuple[int, int], repeat: int) -> Row | str:
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
    enc = best_ms(lambda: peer.sign_and_encrypt(data, signer, keys, padding=True), iters[0], repeat)
    dec = best_ms(lambda: peer.decrypt_and_verify(message, first, sender), iters[1], repeat)
    return enc, dec


def bench_js(plan: dict[int, tuple[int, int]], repeat: int) -> dict[int, Row] | str:
    node = shutil.which("node")
    if node is None:
        return "Node.js not found"
    if not (ROOT / "interop" / "node_modules" / "virgil-crypto" / "package.json").exists():
        return "virgil-crypto not installed in interop/ (run `make node`)"
    ops = [
        {
            "op": "bench",
            "recipients": n,
            "size": SIZE,
            "iterations": enc_iters,
            "decrypt_iterations": dec_iters,
            "repeats": repeat,
        }
        for n, (enc_iters, dec_iters) in plan.items()
    ]
    proc = subprocess.run(
        [node, "--no-experimental-fetch", str(ROOT / "interop" / "crypto_peer.js")],
        input=json.dumps({"ops": ops}),
        capture_output=True,
        text=True,
        cwd=ROOT / "interop",
        timeout=900,
    )
    if proc.returncode != 0:
        return f"node failed: {proc.stderr.strip()[-300:]}"
    results: list[dict[str, Any]] = json.loads(proc.stdout)["results"]
    return {n: (r["encrypt_ms"], r["decrypt_ms"]) for n, r in zip(plan, results, strict=True)}


def _better(old: Row | str | None, new: Row | str) -> Row | str:
    if isinstance(new, str) or old is None or isinstance(old, str):
        return new if old is None or isinstance(old, str) else old
    return (min(old[0], new[0]), min(old[1], new[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (noisier)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (best kept)")
    args = parser.parse_args()
    plan = QUICK_PLAN if args.quick else PLAN
    repeat = 3 if args.quick else 7
    rounds = args.rounds or (1 if args.quick else 3)

    ours: dict[int, Row | str | None] = dict.fromkeys(plan)
    theirs_c: dict[int, Row | str | None] = dict.fromkeys(plan)
    theirs_js: dict[int, Row | str | None] = dict.fromkeys(plan)
    for _ in range(rounds):  # interleaved, so that load changes hit every implementation alike
        for n, iters in plan.items():
            ours[n] = _better(ours[n], bench_ours(n, iters, repeat))
            theirs_c[n] = _better(theirs_c[n], bench_c(n, iters, repeat))
        js = bench_js(plan, repeat)
        for n in plan:
            theirs_js[n] = _better(theirs_js[n], js if isinstance(js, str) else js[n])

    print(f"# auth_encrypt / auth_decrypt of {SIZE} B (padded, signed), ms per message;")
    print(f"# best of {rounds} interleaved rounds x {repeat} runs each")
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    header = f"{'operation':30s} {'ours':>9s} {'C lib':>9s} {'JS':>9s} {'ours/best':>10s}"
    print(header)
    print("-" * len(header))
    notes: list[str] = []

    def cell(row: Row | str | None, i: int) -> float | None:
        return row[i] if isinstance(row, tuple) else None

    for n in plan:
        for i, op in enumerate(("auth_encrypt", "auth_decrypt")):
            mine = cell(ours[n], i)
            assert mine is not None
            c_ms, js_ms = cell(theirs_c[n], i), cell(theirs_js[n], i)
            peers = [x for x in (c_ms, js_ms) if x is not None]
            ratio = f"{mine / min(peers):10.2f}" if peers else f"{'n/a':>10s}"

            def fmt(x: float | None) -> str:
                return f"{x:9.3f}" if x is not None else f"{'n/a':>9s}"

            print(f"{op + f' to {n} + sender':30s} {mine:9.3f} {fmt(c_ms)} {fmt(js_ms)} {ratio}")
        for name, row in (("C lib", theirs_c[n]), ("JS", theirs_js[n])):
            if isinstance(row, str):
                notes.append(f"{name}: {row}")
    small, large = cell(ours[min(plan)], 1), cell(ours[max(plan)], 1)
    assert small is not None and large is not None
    # The table decrypts as the first recipient, as the peers do; a scan over the recipients
    # would be fast there too, so flatness is also measured as the last one (its worst case).
    _, last = bench_ours(max(plan), plan[max(plan)], repeat, reader=-1)
    many, few = max(plan), min(plan)
    print(f"\ndecrypt cost, {many} vs {few} recipients: x{large / small:.2f} as the first,")
    print(f"x{last / small:.2f} as the last of the {many} (flat = 1.0)")
    for note in dict.fromkeys(notes):
        print(f"note: {note}")


if __name__ == "__main__":
    main()
