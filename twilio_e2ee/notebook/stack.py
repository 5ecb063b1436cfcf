"""One offline stack per kernel: started on demand, reused when a cell is re-run, stopped cleanly.

The stack (mock Cards + Keyknox, mock Twilio, token backend) runs in background threads on free
loopback ports. Module-level state makes re-running ``start_stack()`` a no-op instead of a second
set of servers, and an ``atexit`` hook stops it when the kernel exits.
"""

from __future__ import annotations

import atexit
import contextlib
import html
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mock_services.stack import OfflineStack

__all__ = [
    "StackStatus",
    "current_stack",
    "reset_stack",
    "stack_status",
    "start_stack",
    "stop_stack",
]

_lock = threading.RLock()
_stack: OfflineStack | None = None


def start_stack(db_dir: str | Path | None = None) -> OfflineStack:
    """Start the offline stack, or return the one already running in this kernel."""
    global _stack
    with _lock:
        if _stack is not None:
            return _stack
        from mock_services.stack import OfflineStack

        stack = OfflineStack(db_dir=db_dir)
        with _notes_from("twilio_e2ee.backend") as notes:
            stack.start()
        for note in notes:
            print(f"note: {note}")
        _stack = stack
        return stack


@contextlib.contextmanager
def _notes_from(logger_name: str) -> Iterator[list[str]]:
    """Collect a logger's warnings as plain notes (a notebook shows stray stderr in red)."""
    notes: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notes.append(record.getMessage())

    logger = logging.getLogger(logger_name)
    handler = _Collect(logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield notes
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def current_stack() -> OfflineStack | None:
    """The running stack, if any."""
    return _stack


def stop_stack() -> bool:
    """Stop the running stack; returns whether one was running."""
    global _stack
    with _lock:
        stack, _stack = _stack, None
        if stack is None:
            return False
        stack.stop()
        return True


def reset_stack(db_dir: str | Path | None = None) -> OfflineStack:
    """Stop the stack (forgetting all its state and credentials) and start a fresh one."""
    with _lock:
        stop_stack()
        return start_stack(db_dir)


@dataclass(frozen=True)
class StackStatus:
    """Whether the stack runs, its URLs, how many requests each service has seen, and how many
    server threads (``mock-…``) are alive in this process."""

    running: bool
    urls: dict[str, str]
    requests: dict[str, int]
    server_threads: int

    def __str__(self) -> str:
        if not self.running:
            return "offline stack: stopped"
        lines = ["offline stack: running"]
        lines += [f"  {name:8} {url}" for name, url in self.urls.items()]
        lines += [f"  {name:8} {count} request(s) seen" for name, count in self.requests.items()]
        lines.append(f"  {self.server_threads} server threads")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(str(self)) + "</pre>"


def stack_status() -> StackStatus:
    """A snapshot of the singleton stack's state."""
    stack = _stack
    threads = sum(
        1 for t in threading.enumerate() if t.is_alive() and t.name.startswith(_THREAD_PREFIXES)
    )
    if stack is None:
        return StackStatus(False, {}, {}, threads)
    urls = {"cards": stack.cards_url, "twilio": stack.twilio_url, "backend": stack.backend_url}
    requests: dict[str, int] = {}
    for entry in stack.journal.entries:
        requests[entry.service] = requests.get(entry.service, 0) + 1
    return StackStatus(True, urls, dict(sorted(requests.items())), threads)


_THREAD_PREFIXES = ("mock-",)

atexit.register(stop_stack)
