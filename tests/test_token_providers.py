"""Caching JWT providers: caching until shortly before exp, forced reloads, coalescing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from typing import Any

import jwt as pyjwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_e2ee.errors import TokenError
from twilio_e2ee.tokens.providers import (
    AsyncCachingJwtProvider,
    CachingJwtProvider,
    MalformedTokenError,
    TokenCallbackError,
    token_expiry,
    token_identity,
    unverified_claims,
)


def make_token(exp: float, sub: str = "identity-alice", **extra: Any) -> str:
    def seg(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    header = {"alg": "VEDS512", "cty": "virgil-jwt;v=1", "typ": "JWT", "kid": "k"}
    return f"{seg(header)}.{seg({'sub': sub, 'exp': exp, **extra})}.c2ln"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_exp_and_identity_from_virgil_and_twilio_tokens(vectors: dict[str, Any]) -> None:
    stc22 = vectors["sdk"]["STC-22.jwt"]
    assert token_expiry(stc22) == 1518513909
    assert token_identity(stc22) == "some_identity"
    twilio = pyjwt.encode(
        {"exp": 1234, "grants": {"identity": "bob", "chat": {}}, "sub": "AC123"},
        "s" * 32,
        algorithm="HS256",
    )
    assert token_expiry(twilio) == 1234
    assert token_identity(twilio) == "bob"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.x",
        make_token(1).split(".")[0] + ".bm90IGpzb24.x",  # payload "not json"
        make_token(1).split(".")[0] + ".WzFd.x",  # payload [1]
        make_token("soon"),  # type: ignore[arg-type]
        make_token(True),
    ],
)
def test_malformed_tokens(bad: str) -> None:
    with pytest.raises(MalformedTokenError):
        token_expiry(bad)
    assert issubclass(MalformedTokenError, TokenError)


def test_unverified_claims_rejects_non_str() -> None:
    with pytest.raises(TokenError):
        unverified_claims(b"x.y.z")  # type: ignore[arg-type]


def test_caches_until_margin_then_refreshes() -> None:
    clock = Clock()
    calls: list[str] = []

    def cb() -> str:
        tok = make_token(clock.now + 60, jti=str(len(calls)))
        calls.append(tok)
        return tok

    prov = CachingJwtProvider(cb, clock=clock)
    t1 = prov.get_token()
    assert prov.get_token() == t1 and len(calls) == 1
    clock.now += 54.9  # 5.1 s left: still fresh (margin 5 s)
    assert prov.get_token() == t1
    clock.now += 0.2  # 4.9 s left: refresh
    t2 = prov.get_token()
    assert t2 != t1 and len(calls) == 2
    t3 = prov.get_token(force_reload=True)
    assert t3 != t2 and len(calls) == 3
    assert prov.identity() == "alice"


def test_malformed_callback_results_are_typed_errors() -> None:
    with pytest.raises(MalformedTokenError):
        CachingJwtProvider(lambda: 42).get_token()  # type: ignore[arg-type, return-value]
    with pytest.raises(MalformedTokenError):
        CachingJwtProvider(lambda: "not-a-jwt").get_token()

    def boom() -> str:
        raise RuntimeError("backend down")

    with pytest.raises(TokenCallbackError) as info:
        CachingJwtProvider(boom).get_token()
    assert isinstance(info.value.__cause__, RuntimeError)


class CountingLock:
    """A lock that counts how many threads have asked for it (the provider reads its
    generation before asking, so a caller counted here can no longer miss a refresh)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cv = threading.Condition()
        self.asked = 0

    def __enter__(self) -> CountingLock:
        with self._cv:
            self.asked += 1
            self._cv.notify_all()
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def wait_for(self, count: int) -> None:
        with self._cv:
            assert self._cv.wait_for(lambda: self.asked >= count, timeout=10)


def test_threads_coalesce_into_one_callback() -> None:
    calls = 0
    lock = CountingLock()

    def cb() -> str:
        nonlocal calls
        calls += 1
        lock.wait_for(16)  # every caller is waiting for the refresh in progress
        return make_token(time.time() + 600, jti=str(calls))

    prov = CachingJwtProvider(cb)
    prov._lock = lock  # type: ignore[assignment]
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(prov.get_token())) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert calls == 1 and len(results) == 16 and len(set(results)) == 1


def test_concurrent_forced_reloads_coalesce() -> None:
    calls = 0
    lock = CountingLock()

    def cb() -> str:
        nonlocal calls
        calls += 1
        if calls == 2:  # the forced reload: hold it until all nine forcing callers wait
            lock.wait_for(1 + 9)
        return make_token(time.time() + 600, jti=str(calls))

    prov = CachingJwtProvider(cb)
    prov._lock = lock  # type: ignore[assignment]
    first_token = prov.get_token()
    results: list[str] = []

    def force() -> None:
        results.append(prov.get_token(force_reload=True))

    threads = [threading.Thread(target=force) for _ in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert calls == 2 and len(results) == 9 and len(set(results)) == 1
    assert results[0] != first_token


def test_async_coalescing_and_refresh() -> None:
    clock = Clock()
    calls = 0

    async def cb() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return make_token(clock.now + 60, jti=str(calls))

    async def main() -> None:
        prov = AsyncCachingJwtProvider(cb, clock=clock)
        tokens = await asyncio.gather(*(prov.get_token() for _ in range(20)))
        assert calls == 1 and len(set(tokens)) == 1
        assert await prov.get_token() == tokens[0] and calls == 1
        clock.now += 56
        forced = await asyncio.gather(*(prov.get_token(force_reload=True) for _ in range(5)))
        assert calls == 2 and len(set(forced)) == 1 and forced[0] != tokens[0]
        assert await prov.identity() == "alice"

    asyncio.run(main())


def test_async_cancelling_one_caller_does_not_cancel_the_refresh() -> None:
    calls = 0

    async def main() -> None:
        release = asyncio.Event()

        async def cb() -> str:
            nonlocal calls
            calls += 1
            await release.wait()
            return make_token(time.time() + 600)

        prov = AsyncCachingJwtProvider(cb)
        first = asyncio.ensure_future(prov.get_token())
        second = asyncio.ensure_future(prov.get_token())
        for _ in range(3):  # let both callers reach the shared refresh
            await asyncio.sleep(0)
        assert calls == 1 and not first.done()
        first.cancel()
        await asyncio.sleep(0)
        release.set()
        assert isinstance(await second, str)
        assert first.cancelled() and calls == 1

    asyncio.run(main())


def test_async_errors_reach_every_waiter_and_allow_retry() -> None:
    attempts = 0

    async def cb() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        if attempts == 1:
            raise OSError("backend down")
        return make_token(time.time() + 600)

    async def main() -> None:
        prov = AsyncCachingJwtProvider(cb)
        results = await asyncio.gather(prov.get_token(), prov.get_token(), return_exceptions=True)
        assert all(isinstance(r, TokenCallbackError) for r in results)
        assert isinstance(await prov.get_token(), str) and attempts == 2

    asyncio.run(main())


def test_async_accepts_plain_callback() -> None:
    prov = AsyncCachingJwtProvider(lambda: make_token(time.time() + 600))
    assert asyncio.run(prov.get_token()).count(".") == 2


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda a, b, c: f"{a}.{b}.{c}",
            st.text(max_size=20),
            st.one_of(
                st.text(max_size=40),
                st.binary(max_size=60).map(
                    lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
                ),
            ),
            st.text(max_size=10),
        ),
    )
)
def test_fuzz_token_parsing_raises_only_token_errors(token: str) -> None:
    for parse in (token_expiry, token_identity):
        with contextlib.suppress(TokenError):
            parse(token)


def test_unverified_decoding_reads_latin1_parts_as_the_virgil_parser_does() -> None:
    """Virgil's JS SDK writes JWT JSON as Latin-1: the provider reads what the verifier reads."""
    from twilio_e2ee.tokens.virgil_jwt import parse_virgil_jwt

    def seg(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = seg(b'{"alg":"VEDS512","kid":"k","typ":"JWT","cty":"virgil-jwt;v=1"}')
    body = '{"iss":"virgil-app","sub":"identity-bøb","iat":1,"exp":2}'.encode("latin-1")
    token = f"{header}.{seg(body)}.c2ln"
    assert parse_virgil_jwt(token).identity == "bøb"
    assert token_identity(token) == "bøb"
    assert token_expiry(token) == 2


def test_one_malformed_token_error_class() -> None:
    from twilio_e2ee.tokens import MalformedTokenError as exported
    from twilio_e2ee.tokens.virgil_jwt import MalformedTokenError as from_jwt

    assert MalformedTokenError is exported is from_jwt


@pytest.mark.parametrize("provider", [CachingJwtProvider, AsyncCachingJwtProvider])
def test_bad_constructor_arguments_are_token_errors(provider: Any) -> None:
    with pytest.raises(TokenError):
        provider("not callable")
    with pytest.raises(TokenError):
        provider(lambda: "x.y.z", margin="soon")
