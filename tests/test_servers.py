"""ServerThread / bind_loopback: only loopback addresses, decided by address, not by spelling."""

from __future__ import annotations

import pytest

from twilio_e2ee.errors import ConfigurationError
from twilio_e2ee.servers import bind_loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "127.example.com", "::", "10.0.0.1", ""])
def test_non_loopback_hosts_are_refused_before_binding(host: str) -> None:
    with pytest.raises(ConfigurationError, match="non-loopback"):
        bind_loopback(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost"])
def test_loopback_hosts_bind(host: str) -> None:
    with bind_loopback(host) as sock:
        address, port = sock.getsockname()[:2]
        assert address.startswith("127.") and port > 0
