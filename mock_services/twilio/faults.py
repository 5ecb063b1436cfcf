"""Fault injection for reliability tests: per route and rate, deterministic under a seed.

Kinds:

* ``"rate_limit"`` — 429 with ``Retry-After`` and Twilio code 20429; nothing is applied.
* ``"server_error"`` — a 5xx (default 503, code 20503) before anything is applied.
* ``"answer_lost"`` — the request **is applied and stored**, then the answer fails (default 502
  with a gateway's non-JSON body), the case that makes naive retries post twice. With
  ``drop_connection=True`` the server instead closes the connection after the commit without
  sending a single byte of the answer: the client sees a transport error (``requests``:
  ``ConnectionError`` from ``RemoteDisconnected``), as when the answer is lost in the network.

Example::

    service.faults.add("answer_lost", method="POST", path="/v1/Conversations/*/Messages", rate=0.3)
    service.faults.add("answer_lost", method="POST", path="*/Messages", drop_connection=True)
    service.faults.add("rate_limit", path="*/Messages", rate=0.2, retry_after=1)
    service.faults.clear()

``path`` is an :mod:`fnmatch` pattern over the request path (``*`` also crosses ``/``); ``rate``
is the probability that a matching request is hit, drawn from one seeded RNG (same seed, same
requests → same faults); ``times`` caps how many requests a fault hits.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass, field
from typing import Literal

from twilio_e2ee.errors import ConfigurationError

__all__ = ["Fault", "FaultInjector", "FaultKind"]

FaultKind = Literal["rate_limit", "server_error", "answer_lost"]
_DEFAULT_STATUS = {"rate_limit": 429, "server_error": 503, "answer_lost": 502}


@dataclass
class Fault:
    """One configured fault; ``hits`` counts the requests it has hit so far."""

    kind: FaultKind
    method: str | None = None
    path: str = "*"
    rate: float = 1.0
    times: int | None = None
    status: int = 0
    retry_after: int = 1
    hits: int = field(default=0)
    drop_connection: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return fnmatch.fnmatchcase(path, self.path)


class FaultInjector:
    """The faults of one mock service (thread-safe)."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.seed = seed

    def add(
        self,
        kind: FaultKind,
        *,
        method: str | None = None,
        path: str = "*",
        rate: float = 1.0,
        times: int | None = None,
        status: int | None = None,
        retry_after: int = 1,
        drop_connection: bool = False,
    ) -> Fault:
        """Add a fault; returns it (pass it to :meth:`remove`, read its ``hits``).

        ``drop_connection`` (``answer_lost`` only): close the connection instead of answering.
        """
        if kind not in _DEFAULT_STATUS:
            known = ", ".join(sorted(_DEFAULT_STATUS))
            raise ConfigurationError(f"unknown fault kind {kind!r}; use one of {known}")
        if not 0.0 <= rate <= 1.0:
            raise ConfigurationError("rate must be between 0 and 1")
        code = status if status is not None else _DEFAULT_STATUS[kind]
        if kind == "rate_limit" and code != 429:
            raise ConfigurationError("a rate_limit fault answers 429")
        if kind != "rate_limit" and not 500 <= code <= 599:
            raise ConfigurationError(f"a {kind} fault answers a 5xx status")
        if drop_connection and kind != "answer_lost":
            raise ConfigurationError("only an answer_lost fault can drop the connection")
        fault = Fault(
            kind, method, path, rate, times, code, retry_after, drop_connection=drop_connection
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self, *, seed: int | None = None) -> None:
        """Remove every fault (and reseed the RNG when ``seed`` is given)."""
        with self._lock:
            self._faults.clear()
            if seed is not None:
                self.seed = seed
                self._rng = random.Random(seed)

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def draw(self, method: str, path: str) -> Fault | None:
        """The fault that hits this request, if any (first matching fault wins its draw)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path) and self._rng.random() < fault.rate:
                    fault.hits += 1
                    return fault
        return None
