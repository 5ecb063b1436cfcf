"""Helpers shared by the notebook widgets: the error type, MIME bundles, one live view per name."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from twilio_e2ee.errors import E2EEError

__all__ = ["NotebookError", "ViewRegistry", "widget_bundle"]


class NotebookError(E2EEError):
    """Bad input to a notebook widget or helper (unknown identity, negative total, wrong type)."""


def widget_bundle(widget: Any, text: str, **kwargs: Any) -> dict[str, Any]:
    """The widget's MIME bundle with a stable, content-free ``text/plain`` (for nbval)."""
    method = getattr(widget, "_repr_mimebundle_", None)
    bundle = dict(method(**kwargs) or {}) if callable(method) else {}
    bundle["text/plain"] = text
    return bundle


class _Closable(Protocol):
    def close(self) -> None: ...


class ViewRegistry:
    """The live view of each name: registering a view under a taken name closes the older one.

    Re-running a notebook cell that creates a view thus leaves exactly one view listening to the
    journal instead of one more each time.
    """

    def __init__(self) -> None:
        self._views: dict[str, _Closable] = {}
        self._lock = threading.Lock()

    def register(self, name: str, view: _Closable) -> None:
        """Make `view` the live view called `name`, closing the one it replaces."""
        with self._lock:
            previous = self._views.get(name)
            self._views[name] = view
        if previous is not None and previous is not view:
            previous.close()

    def forget(self, name: str, view: _Closable) -> None:
        """Drop `view` (on close) unless a newer view has taken its name."""
        with self._lock:
            if self._views.get(name) is view:
                del self._views[name]
