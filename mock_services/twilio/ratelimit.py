"""Twilio's actions-per-second limit (opt-in): writes beyond the rate get 429 with code 50063.

Twilio limits writes (not reads) to 30 actions per second per conversation for messages and
participants, and per service for conversations and users. ``TwilioLimits(actions_per_second=30)``
turns the same sliding one-second window on in the mock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["ActionRateLimiter"]


class ActionRateLimiter:
    """At most ``rate`` actions per key in any one-second window (thread-safe)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._windows: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one action for ``key``; False when it would exceed the rate."""
        now = self._clock()
        with self._lock:
            window = self._windows.setdefault(key, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.rate:
                return False
            window.append(now)
            return True
