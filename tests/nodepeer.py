"""Run Virgil's JS libraries (installed in interop/node_modules by `make node`) from tests.

A test that needs a peer calls :func:`require_node_peer`; if Node.js or the package is missing,
the test is *skipped with the reason printed*, never passed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

INTEROP = Path(__file__).resolve().parent.parent / "interop"
NODE_FLAGS = ["--no-experimental-fetch"]  # Virgil's old Emscripten loader needs it on Node 18+


def require_node_peer(package: str) -> str:
    """Return the node binary, or skip the test saying what is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js not found: JS interop peer unavailable")
    if not (INTEROP / "node_modules" / package / "package.json").exists():
        pytest.skip(f"npm package {package} not installed in interop/ (run `make node`)")
    return node


def run_node(script: str, payload: Any, *, package: str, timeout: float = 120) -> Any:
    """Run `interop/<script>` with JSON on stdin; return its JSON stdout."""
    node = require_node_peer(package)
    proc = subprocess.run(
        [node, *NODE_FLAGS, str(INTEROP / script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=INTEROP,
    )
    if proc.returncode != 0:
        raise AssertionError(f"node {script} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)
