"""Shared fixtures: Virgil's vectors, Twilio's spec, and the Node.js interop peers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mock_services.stack import OfflineStack

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    """Virgil's published cross-SDK vectors (copied from ../shared/vectors, unchanged)."""
    return json.loads((DATA / "virgil_compat.json").read_text())


@pytest.fixture(scope="session")
def offline_stack() -> Iterator[OfflineStack]:
    """The offline stack (mock Cards + Keyknox, mock Twilio, token backend), started once.

    Shared by the whole session: use fresh identities / conversations per test.
    """
    from mock_services.stack import OfflineStack

    stack = OfflineStack().start()
    try:
        yield stack
    finally:
        stack.stop()
