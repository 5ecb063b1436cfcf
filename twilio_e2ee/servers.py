"""Run ASGI apps on loopback in a background thread (for notebooks, tests and the stack launcher).

The socket is bound before the thread starts, so a port that cannot be bound fails at once with a
clear error; `start()` then waits for uvicorn to report readiness, with a deadline. `stop()` is
idempotent and joins the thread, so re-running a notebook cell never leaks servers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from typing import Any

import uvicorn

from twilio_e2ee.errors import ConfigurationError

__all__ = ["ServerThread", "bind_loopback"]


def _is_loopback(host: object) -> bool:
    """A loopback IP address, or ``localhost`` (never a name that merely starts with 127.)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # type: ignore[arg-type]
    except ValueError:
        return False


def bind_loopback(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind a listening TCP socket on a loopback address (port 0 = a free port)."""
    if not _is_loopback(host):
        raise ConfigurationError(f"refusing to serve on non-loopback address {host!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (proto 0 would
    # leave Nagle on: ~40 ms per request from delayed ACKs).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class ServerThread:
    """An ASGI app served by uvicorn in a daemon thread on a loopback port."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "server",
        log_level: str = "warning",
    ) -> None:
        self.app = app
        self.host = host
        self.name = name
        self._requested_port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._error: BaseException | None = None
        self.port: int = port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Bind, start serving, and wait until ready (raises ConfigurationError on failure)."""
        if self.running:
            return self
        self._sock = bind_loopback(self.host, self._requested_port)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level=self._log_level, lifespan="auto", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._error = None
        self._thread = threading.Thread(
            target=self._run, name=f"{self.name}-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                self.stop()
                raise ConfigurationError(f"{self.name} failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(f"{self.name} not ready after {timeout:.0f} s")
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._sock is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported to start()
            self._error = exc

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread; safe to call more than once."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ServerThread {self.name} {self.url} {state}>"
