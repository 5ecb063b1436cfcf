"""The ``%e2ee_stack`` line magic: ``start``, ``stop``, ``reset`` or ``status`` of the stack.

Each sub-command is one call of :mod:`twilio_e2ee.notebook.stack`, so notebooks can also use the
plain Python form (``start_stack()``, ``stop_stack()``, ``reset_stack()``, ``stack_status()``).
"""

from __future__ import annotations

from typing import Any

from twilio_e2ee.errors import ConfigurationError
from twilio_e2ee.notebook import stack as _stack

__all__ = ["e2ee_stack", "register_magics", "unregister_magics"]

USAGE = "usage: %e2ee_stack start|stop|reset|status"


def e2ee_stack(line: str) -> _stack.StackStatus:
    """Control the notebook's offline stack; returns its status (displayed by the notebook)."""
    words = line.split()
    command = words[0] if words else "status"
    if len(words) > 1 or command not in ("start", "stop", "reset", "status"):
        raise ConfigurationError(USAGE)
    if command == "start":
        _stack.start_stack()
    elif command == "stop":
        _stack.stop_stack()
    elif command == "reset":
        _stack.reset_stack()
    return _stack.stack_status()


def register_magics(ipython: Any) -> None:
    """Register ``%e2ee_stack`` with an IPython shell."""
    ipython.register_magic_function(e2ee_stack, magic_kind="line", magic_name="e2ee_stack")


def unregister_magics(ipython: Any) -> None:
    """Remove ``%e2ee_stack`` (the stack itself is stopped by the caller)."""
    ipython.magics_manager.magics["line"].pop("e2ee_stack", None)
