"""Shared fixtures: Virgil's vectors, Twilio's spec, and the Node.js interop peers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    """Virgil's published cross-SDK vectors (copied from ../shared/vectors, unchanged)."""
    return json.loads((DATA / "virgil_compat.json").read_text())
