"""The README's quick-start script runs as documented and shows what it claims."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_runs_and_twilio_sees_only_ciphertext() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "bob reads: alice: Hi Bob, the door code is 4711" in lines
    (wire,) = [line for line in lines if line.startswith("twilio saw: ")]
    assert "4711" not in wire and "door" not in wire
    assert wire.startswith("twilio saw: MII")  # DER of Virgil's message info, base64
