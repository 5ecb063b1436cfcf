"""The retry policy and driver, sans I/O: a fake Twilio that refuses, fails or loses answers."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from twilio_e2ee.chat.errors import DeliveryError, TwilioServiceError, TwilioUnavailableError
from twilio_e2ee.chat.retry import (
    FailureKind,
    RetryPolicy,
    classify,
    parse_retry_after,
    send_with_retry,
    send_with_retry_async,
)


def rest(status: int, code: int | None = None) -> TwilioRestException:
    return TwilioRestException(status, "https://conversations.twilio.com/v1/x", "boom", code)


def test_classify() -> None:
    assert classify(rest(429, 20429)) is FailureKind.RETRY
    assert classify(rest(400, 50063)) is FailureKind.RETRY  # rate-limit code on another status
    assert classify(rest(503)) is FailureKind.UNCERTAIN
    assert classify(rest(502)) is FailureKind.UNCERTAIN
    assert classify(requests.exceptions.ConnectionError()) is FailureKind.UNCERTAIN
    assert classify(requests.exceptions.ReadTimeout()) is FailureKind.UNCERTAIN
    assert classify(TimeoutError()) is FailureKind.UNCERTAIN
    assert classify(rest(400, 50504)) is FailureKind.FATAL
    assert classify(rest(401, 20003)) is FailureKind.FATAL
    assert classify(ValueError()) is FailureKind.FATAL


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = (now + timedelta(seconds=7)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now=now) == pytest.approx(7.0)


def test_backoff_is_exponential_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.0, max_retry_after=30)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(1, retry_after=12.0) == 12.0
    assert policy.delay(1, retry_after=600.0) == 30.0
    jittered = RetryPolicy(base_delay=1.0, jitter=0.2)
    assert all(0.8 <= jittered.delay(1) <= 1.2 for _ in range(50))


class FakeTwilio:
    """Stores posts; each call may be refused (429), fail (503) or lose its answer."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.stored: list[str] = []
        self.lookups = 0

    def _next(self) -> str:
        return self.script.pop(0) if self.script else "ok"

    def post(self, item: str) -> str:
        step = self._next()
        if step == "429":
            raise rest(429, 20429)
        if step == "503":
            raise rest(503, 20503)
        if step == "fatal":
            raise rest(400, 50504)
        self.stored.append(item)
        if step == "lost":
            raise requests.exceptions.ConnectionError("answer lost")
        if step == "lost502":
            raise rest(502)
        return item

    def lookup(self, item: str) -> str | None:
        self.lookups += 1
        step = self._next()
        if step in ("429", "503"):
            raise rest(int(step))
        return item if item in self.stored else None


def run(fake: FakeTwilio, item: str, policy: RetryPolicy | None = None, ra: float | None = None):  # type: ignore[no-untyped-def]
    slept: list[float] = []
    report = send_with_retry(
        lambda: fake.post(item),
        lambda: fake.lookup(item),
        client_message_id=item,
        policy=policy or RetryPolicy(jitter=0.0),
        retry_after=lambda: ra,
        sleep=slept.append,
    )
    return report, slept


def test_rate_limited_then_ok_waits_retry_after() -> None:
    fake = FakeTwilio(["429", "429"])
    report, slept = run(fake, "m1", ra=2.5)
    assert fake.stored == ["m1"] and report.attempts == 3 and slept == [2.5, 2.5]
    assert fake.lookups == 0  # a 429 is never applied: no lookup needed


def test_lost_answer_is_found_not_reposted() -> None:
    for lost in ("lost", "lost502"):
        fake = FakeTwilio([lost])
        report, _ = run(fake, "m2")
        assert fake.stored == ["m2"]
        assert report.recovered_by_lookup and fake.lookups == 1


def test_server_error_not_applied_is_reposted_after_lookup() -> None:
    fake = FakeTwilio(["503"])
    report, _ = run(fake, "m3")
    assert fake.stored == ["m3"] and fake.lookups == 1 and not report.recovered_by_lookup


def test_failing_lookup_is_retried_before_any_repost() -> None:
    fake = FakeTwilio(["lost", "503", "429"])
    report, _ = run(fake, "m4")
    assert fake.stored == ["m4"] and report.recovered_by_lookup and fake.lookups == 3


def test_fatal_is_not_retried() -> None:
    fake = FakeTwilio(["fatal"])
    with pytest.raises(TwilioServiceError) as info:
        run(fake, "m5")
    assert info.value.code == 50504 and fake.stored == []


def test_exhausted_rate_limit_says_nothing_posted() -> None:
    fake = FakeTwilio(["429"] * 10)
    with pytest.raises(DeliveryError) as info:
        run(fake, "m6", RetryPolicy(max_attempts=3, jitter=0.0))
    assert not info.value.maybe_posted and fake.stored == []
    assert "nothing was posted" in str(info.value)


def test_exhausted_uncertain_but_stored_is_success() -> None:
    # every answer is lost, but the final lookup finds the (single) stored copy
    fake = FakeTwilio(["lost", "503", "503"])
    report, _ = run(fake, "m7", RetryPolicy(max_attempts=3, jitter=0.0))
    assert fake.stored == ["m7"] and report.recovered_by_lookup


def test_reads_exhausted_raise_unavailable() -> None:
    def always() -> str:
        raise rest(503)

    with pytest.raises(TwilioUnavailableError):
        send_with_retry(
            always,
            lambda: None,
            client_message_id=None,
            policy=RetryPolicy(max_attempts=2),
            sleep=lambda s: None,
        )


def test_random_fault_storm_stores_each_message_exactly_once() -> None:
    rng = random.Random(7)
    steps = ["ok", "429", "503", "lost", "lost502"]
    fake = FakeTwilio([rng.choice(steps) for _ in range(400)])
    for n in range(60):
        run(fake, f"msg{n}", RetryPolicy(max_attempts=30, jitter=0.0))
    assert fake.stored == [f"msg{n}" for n in range(60)]


def test_async_driver_same_guarantees() -> None:
    fake = FakeTwilio(["429", "lost", "503"])
    slept: list[float] = []

    async def post() -> str:
        return fake.post("a1")

    async def lookup() -> str | None:
        return fake.lookup("a1")

    async def sleep(delay: float) -> None:
        slept.append(delay)

    report = asyncio.run(
        send_with_retry_async(
            post,
            lookup,
            client_message_id="a1",
            policy=RetryPolicy(jitter=0.0),
            retry_after=lambda: 1.5,
            sleep=sleep,
        )
    )
    assert fake.stored == ["a1"] and report.recovered_by_lookup
    assert slept[0] == 1.5
