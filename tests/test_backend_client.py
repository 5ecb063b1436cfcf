"""BackendClient (sync, over a real loopback server) and AsyncBackendClient (in-process)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from twilio_e2ee.backend import Backend, BackendConfig, create_backend_app
from twilio_e2ee.backend.client import (
    AsyncBackendClient,
    BackendAuthenticationError,
    BackendClient,
    BackendRequestError,
    NotSignedInError,
    RateLimitedError,
)
from twilio_e2ee.credentials import StackCredentials, generate_development_credentials
from twilio_e2ee.errors import AuthenticationError, E2EEError, ServiceUnavailableError
from twilio_e2ee.servers import ServerThread
from twilio_e2ee.tokens.twilio_token import verify_twilio_access_token_with
from twilio_e2ee.tokens.virgil_jwt import verify_virgil_jwt

PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module")
def creds() -> StackCredentials:
    return generate_development_credentials()


@pytest.fixture(scope="module")
def server(creds: StackCredentials) -> Iterator[tuple[str, Backend]]:
    app = create_backend_app(
        BackendConfig(
            creds, development=True, password_hasher=FAST, max_failed_logins_per_address=50
        )
    )
    with ServerThread(app, name="backend-test") as thread:
        yield thread.url, app.state.backend


def virgil_identity(token: str, creds: StackCredentials) -> str:
    jwt = verify_virgil_jwt(
        token, app_public_key=creds.virgil.app_public_key, app_key_id=creds.virgil.app_key_id
    )
    return jwt.identity


def test_sync_flow_and_caching_providers(server: Any, creds: StackCredentials) -> None:
    url, backend = server
    with BackendClient(url) as client:
        session = client.signup("carol", PASSWORD)
        assert session.identity == "carol" and client.identity == "carol"
        assert session.auth_token not in repr(session)
        before = backend.mints["virgil"]
        provider = client.virgil_token_provider()
        first = provider.get_token()
        assert provider.get_token() == first and client.virgil_token_callback() == first
        assert backend.mints["virgil"] == before + 1  # cached, not re-minted
        assert virgil_identity(first, creds) == "carol"
        assert virgil_identity(provider.get_token(force_reload=True), creds) == "carol"
        assert backend.mints["virgil"] == before + 2
        twilio = client.twilio_token_provider().get_token()
        assert verify_twilio_access_token_with(twilio, creds.twilio).identity == "carol"
        assert client.me()["identity"] == "carol"
        assert virgil_identity(client.fetch_virgil_jwt(), creds) == "carol"
        assert client.fetch_twilio_token().count(".") == 2


def test_concurrent_refreshes_coalesced_sync(server: Any) -> None:
    url, backend = server
    with BackendClient(url) as client:
        client.signup("dave", PASSWORD)
        provider = client.twilio_token_provider()
        before = backend.mints["twilio"]
        results: list[str] = []
        barrier = threading.Barrier(8)

        def worker() -> None:
            barrier.wait()
            results.append(provider.get_token())

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(results)) == 1 and len(results) == 8
        assert backend.mints["twilio"] == before + 1


def test_logout_and_login_errors(server: Any) -> None:
    url, _ = server
    with BackendClient(url) as client:
        with pytest.raises(NotSignedInError):
            client.fetch_virgil_jwt()
        with pytest.raises(NotSignedInError):
            client.virgil_token_provider()
        client.signup("erin", PASSWORD)
        old = client.virgil_token_provider()
        old.get_token()
        assert client.logout() == 1
        assert client.session is None
        with pytest.raises(BackendAuthenticationError) as err:
            old.get_token(force_reload=True)  # the provider stayed bound to the revoked session
        assert err.value.error_code == "session_revoked" and err.value.status == 401
        with pytest.raises(BackendAuthenticationError) as err:
            client.login("erin", "wrong password")
        assert err.value.error_code == "invalid_credentials"
        assert isinstance(err.value, AuthenticationError)
        with pytest.raises(BackendRequestError) as req:
            client.signup("erin", PASSWORD)
        assert req.value.status == 409 and req.value.error_code == "identity_taken"
        with pytest.raises(BackendRequestError):
            client.signup("", PASSWORD)
        client.login("erin", PASSWORD)
        assert client.virgil_token_provider() is not old
        client.login_passwordless("sample-user")  # the backend runs in development mode
        assert client.identity == "sample-user"


def test_rate_limited_error(server: Any) -> None:
    url, _ = server
    with BackendClient(url) as client:
        client.signup("frank", PASSWORD)
        for _ in range(5):
            with pytest.raises(BackendAuthenticationError):
                client.login("frank", "wrong password")
        with pytest.raises(RateLimitedError) as err:
            client.login("frank", PASSWORD)
        assert err.value.retry_after is not None and err.value.retry_after > 0
        assert err.value.error_code == "too_many_attempts"


def test_unreachable_backend() -> None:
    with (
        BackendClient("http://127.0.0.1:9", timeout=2) as client,
        pytest.raises(ServiceUnavailableError),
    ):
        client.login("a", PASSWORD)
    with pytest.raises(E2EEError):
        BackendClient("ftp://example")


def test_non_json_answer_is_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hello</html>")

    with (
        BackendClient("http://backend", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(E2EEError, match="not JSON"),
    ):
        client.login("a", PASSWORD)

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    with (
        BackendClient("http://backend", transport=httpx.MockTransport(broken)) as client,
        pytest.raises(ServiceUnavailableError),
    ):
        client.login("a", PASSWORD)


@pytest.mark.parametrize(("header", "expected"), [(b"7", 7.0), (b"\xb2", None), (b"soon", None)])
def test_odd_retry_after_headers_are_typed(header: bytes, expected: float | None) -> None:
    """Header byte 0xB2 reads as "²" (Latin-1): str.isdigit() says yes, float() says no."""

    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers=[(b"retry-after", header)], json={"error": "slow"})

    with (
        BackendClient("http://backend", transport=httpx.MockTransport(limited)) as client,
        pytest.raises(RateLimitedError) as err,
    ):
        client.login("a", PASSWORD)
    assert err.value.retry_after == expected


def test_async_client_coalesces_concurrent_refreshes(creds: StackCredentials) -> None:
    app = create_backend_app(BackendConfig(creds, password_hasher=FAST))
    backend: Backend = app.state.backend

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncBackendClient("http://backend", transport=transport) as client:
            await client.signup("gina", PASSWORD)
            provider = client.virgil_token_provider()
            tokens = await asyncio.gather(*(provider.get_token() for _ in range(10)))
            assert len(set(tokens)) == 1 and backend.mints["virgil"] == 1
            assert await client.virgil_token_callback() == tokens[0]
            assert virgil_identity(tokens[0], creds) == "gina"
            twilio = await client.twilio_token_provider().get_token()
            assert verify_twilio_access_token_with(twilio, creds.twilio).identity == "gina"
            assert (await client.me())["identity"] == "gina"
            assert await client.fetch_twilio_token() != ""
            assert virgil_identity(await client.fetch_virgil_jwt(), creds) == "gina"
            with pytest.raises(BackendRequestError) as err:
                await client.login_passwordless("gina")  # production mode
            assert err.value.error_code == "password_required"
            assert await client.logout(all_sessions=True) == 1
            with pytest.raises(NotSignedInError):
                await client.fetch_virgil_jwt()
            with pytest.raises(BackendAuthenticationError):
                await provider.get_token(force_reload=True)
            await client.login("gina", PASSWORD)
            assert client.identity == "gina"

    asyncio.run(scenario())
