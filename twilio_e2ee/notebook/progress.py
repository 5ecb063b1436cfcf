"""A progress bar widget for long work (many recipients, long histories), headless-safe."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import ipywidgets as w

from twilio_e2ee.notebook._base import NotebookError, widget_bundle

__all__ = ["ProgressBar", "track"]

T = TypeVar("T")


class ProgressBar:
    """An ipywidgets bar plus a ``done/total`` label; its state (`value`, `total`) is testable."""

    def __init__(self, total: int, description: str = "") -> None:
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise NotebookError(f"total must be a whole number >= 0, not {total!r}")
        self.bar = w.IntProgress(value=0, min=0, max=max(total, 1), description=description)
        self.label = w.Label(value=f"0/{total}")
        self.widget = w.HBox([self.bar, self.label])
        self.widget.add_class("e2ee-progress")
        self._total = total
        self._value = 0

    @property
    def value(self) -> int:
        return self._value

    @property
    def total(self) -> int:
        return self._total

    @property
    def done(self) -> bool:
        return self._value >= self._total

    def update(self, steps: int = 1) -> None:
        """Advance by `steps` (never past the total)."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise NotebookError(f"steps must be a whole number >= 0, not {steps!r}")
        self._value = min(self._total, self._value + steps)
        self.bar.value = self._value
        self.label.value = f"{self._value}/{self._total}"
        if self.done:
            self.bar.bar_style = "success"

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Yield `items`, advancing the bar after each one."""
        for item in items:
            yield item
            self.update()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return widget_bundle(self.widget, f"ProgressBar({self.bar.description!r})", **kwargs)


def track(items: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Iterate over `items` with a progress bar displayed in the notebook."""
    display: Any = importlib.import_module("IPython.display").display
    if total is None:
        items = list(items)
        total = len(items)
    bar = ProgressBar(total, description)
    display(bar)
    yield from bar.track(items)
