"""Helpers shared by the notebook widgets."""

from __future__ import annotations

from typing import Any

__all__ = ["widget_bundle"]


def widget_bundle(widget: Any, text: str, **kwargs: Any) -> dict[str, Any]:
    """The widget's MIME bundle with a stable, content-free ``text/plain`` (for nbval)."""
    method = getattr(widget, "_repr_mimebundle_", None)
    bundle = dict(method(**kwargs) or {}) if callable(method) else {}
    bundle["text/plain"] = text
    return bundle
