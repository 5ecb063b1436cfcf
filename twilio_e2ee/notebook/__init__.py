"""Notebook support: rich displays, the ``%e2ee_stack`` magic, and ipywidgets views.

Load it in a notebook with ``%load_ext twilio_e2ee.notebook``: the package's types (keys, cards,
tokens, journals, messages) then display as tables, and ``%e2ee_stack start|stop|reset|status``
controls the offline stack. Widgets live in :mod:`twilio_e2ee.notebook.widgets` and run headless
too (set values, ``button.click()``, assert on state).
"""

from __future__ import annotations

from typing import Any

from twilio_e2ee.notebook.display import register_formatters, unregister_formatters
from twilio_e2ee.notebook.magics import register_magics, unregister_magics
from twilio_e2ee.notebook.stack import (
    current_stack,
    reset_stack,
    stack_status,
    start_stack,
    stop_stack,
)

__all__ = [
    "current_stack",
    "load_ipython_extension",
    "reset_stack",
    "stack_status",
    "start_stack",
    "stop_stack",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext twilio_e2ee.notebook``."""
    register_formatters(ipython)
    register_magics(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext twilio_e2ee.notebook``: removes displays, magic and the stack."""
    unregister_formatters(ipython)
    unregister_magics(ipython)
    stop_stack()
