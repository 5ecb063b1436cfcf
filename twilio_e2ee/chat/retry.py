"""Retries without loss or duplicates (sans-I/O policy + a small driver).

Twilio answers 429 when a conversation exceeds its actions per second and 5xx on trouble; the
`twilio` SDK does not retry either. Conversations messages have no idempotency key, so after an
*uncertain* failure (5xx, timeout, connection dropped after the request was sent) the message may
or may not exist. The driver then looks for the random client message id it put in the attributes
among the conversation's recent messages before posting again.

Classification:

* ``REJECTED``  – the request was refused and not applied (429, 4xx): 429 is retried after the
  delay Twilio asks for (``Retry-After``) or an exponential backoff; other 4xx are final.
* ``UNCERTAIN`` – it may have been applied (5xx, lost answer): look up, then re-post if absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar

from twilio.base.exceptions import TwilioException, TwilioRestException

from twilio_e2ee.chat.errors import DeliveryError, TwilioServiceError, TwilioUnavailableError

__all__ = [
    "FailureKind",
    "RetryPolicy",
    "call_once",
    "classify",
    "parse_retry_after",
    "send_with_retry",
    "send_with_retry_async",
    "twilio_error_info",
]

T = TypeVar("T")

RATE_LIMIT_CODES = frozenset({20429, 50063, 50074})


class FailureKind(enum.Enum):
    RETRY = "retry"  # refused, not applied: safe to post again after a delay
    UNCERTAIN = "uncertain"  # may have been applied: look up before posting again
    FATAL = "fatal"  # refused for good (bad request, auth...)


def twilio_error_info(exc: BaseException) -> tuple[int, int | None, str] | None:
    """(HTTP status, Twilio code, message) of an SDK error, or None for other exceptions.

    Creates raise ``TwilioRestException``; page fetches raise a plain
    ``TwilioException("Unable to fetch page", response)`` carrying the response.
    """
    if isinstance(exc, TwilioRestException):
        return int(exc.status or 0), exc.code, str(exc.msg)
    if isinstance(exc, TwilioException) and len(exc.args) >= 2:
        response = exc.args[1]
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            code: int | None = None
            message = str(exc.args[0])
            try:
                body = json.loads(getattr(response, "text", "") or "")
                if isinstance(body, dict):
                    raw_code = body.get("code")
                    code = raw_code if isinstance(raw_code, int) else None
                    message = str(body.get("message") or message)
            except ValueError:
                pass
            return status, code, message
    return None


def classify(exc: BaseException) -> FailureKind:
    """How a failure of a request must be handled."""
    info = twilio_error_info(exc)
    if info is not None:
        status, code, _ = info
        if status == 429 or code in RATE_LIMIT_CODES:
            return FailureKind.RETRY
        if status >= 500:
            return FailureKind.UNCERTAIN
        return FailureKind.FATAL
    if _is_transport_error(exc):
        return FailureKind.UNCERTAIN
    return FailureKind.FATAL


def _is_transport_error(exc: BaseException) -> bool:
    """Connection reset, timeout, truncated answer: the request may have reached Twilio."""
    try:
        import requests

        if isinstance(exc, requests.exceptions.RequestException):
            return True
    except ImportError:  # pragma: no cover - requests is a twilio dependency
        pass
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return True
    except ImportError:  # pragma: no cover - aiohttp is a twilio dependency
        pass
    return isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring ``Retry-After`` (capped)."""

    max_attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.2  # +/- fraction of the computed delay
    max_retry_after: float = 60.0  # never wait longer than this, whatever the server says

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before attempt number `attempt + 1` (`attempt` counts from 1)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        raw = min(self.max_delay, self.base_delay * self.multiplier ** max(0, attempt - 1))
        spread = raw * self.jitter
        return max(0.0, raw + random.uniform(-spread, spread))


@dataclass
class RetryReport(Generic[T]):
    """What a send took: the result, attempts made, lookups made and the delays slept."""

    result: T
    attempts: int
    lookups: int
    delays: list[float]
    recovered_by_lookup: bool


def _final_error(exc: BaseException, client_message_id: str | None, uncertain: bool) -> Exception:
    info = twilio_error_info(exc)
    status: int | None
    if info is not None:
        status, code, msg = info
    else:
        status, code, msg = None, None, f"{type(exc).__name__}: {exc}"
    if client_message_id is None:
        return TwilioUnavailableError(
            f"Twilio kept failing after retries (last error: {msg}); try again later",
            status=status,
            code=code,
        )
    text = f"message not delivered after retries (last error: {msg}); " + (
        f"it may have been posted: look for client message id {client_message_id} "
        "in the conversation before sending again"
        if uncertain
        else "nothing was posted; try again later"
    )
    return DeliveryError(
        text,
        client_message_id=client_message_id,
        maybe_posted=uncertain,
        status=status,
        code=code,
    )


def _fatal_error(exc: BaseException) -> Exception:
    info = twilio_error_info(exc)
    if info is not None:
        status, code, msg = info
        return TwilioServiceError(
            f"Twilio refused the request: {msg} (HTTP {status}, code {code})",
            status=status,
            code=code,
        )
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def call_once(call: Callable[[], T]) -> T:
    """One SDK request that must not be repeated blindly (a create without a lookup).

    Its failure becomes the package's error: TwilioServiceError when Twilio refused, else
    TwilioUnavailableError (it may or may not have been applied).
    """
    try:
        return call()
    except Exception as exc:
        if classify(exc) is FailureKind.FATAL:
            raise _fatal_error(exc) from exc
        info = twilio_error_info(exc)
        status, code, msg = info if info else (None, None, f"{type(exc).__name__}: {exc}")
        raise TwilioUnavailableError(
            f"Twilio did not answer the request (last error: {msg}); "
            "check whether it was applied before trying again",
            status=status,
            code=code,
        ) from exc


class _Run(Generic[T]):
    """The sans-I/O state of one retried request: what to do after each outcome.

    The sync and async drivers below only make the calls and sleep; every decision (lookup
    before re-posting, delays, the final verdict) is taken here.
    """

    def __init__(self, policy: RetryPolicy, client_message_id: str | None) -> None:
        self.policy = policy
        self.client_message_id = client_message_id
        self.delays: list[float] = []
        self.lookups = 0
        self.lookup_pending = False  # an uncertain failure happened since the last lookup
        self.uncertain_seen = False
        self.last_exc: BaseException | None = None

    def start_lookup(self) -> bool:
        """True when a lookup must come before the next post (and counts it)."""
        if self.lookup_pending:
            self.lookups += 1
        return self.lookup_pending

    def done(self, result: T, attempt: int, *, by_lookup: bool = False) -> RetryReport[T]:
        return RetryReport(result, attempt, self.lookups, self.delays, by_lookup)

    def failed(
        self, exc: Exception, attempt: int, retry_after: Callable[[], float | None]
    ) -> float | None:
        """Record a failure; the delay before the next attempt (None after the last one)."""
        kind = classify(exc)
        if kind is FailureKind.FATAL:
            raise _fatal_error(exc) from exc
        self.last_exc = exc
        if kind is FailureKind.UNCERTAIN:
            self.lookup_pending = self.uncertain_seen = True
        hint = retry_after() if kind is FailureKind.RETRY else None
        if attempt >= self.policy.max_attempts:
            return None
        delay = self.policy.delay(attempt, hint)
        self.delays.append(delay)
        return delay

    def final_lookup_due(self) -> bool:
        """A last look after exhaustion, so an applied-but-unanswered create is never lost."""
        if self.uncertain_seen:
            self.lookups += 1
        return self.uncertain_seen

    def give_up(self, found: T | None) -> RetryReport[T]:
        """The report when the last look found the message, else raise the final error."""
        if found is not None:
            return self.done(found, self.policy.max_attempts, by_lookup=True)
        assert self.last_exc is not None
        error = _final_error(self.last_exc, self.client_message_id, self.uncertain_seen)
        raise error from self.last_exc


def send_with_retry(
    post: Callable[[], T],
    lookup: Callable[[], T | None],
    *,
    client_message_id: str | None,
    policy: RetryPolicy,
    retry_after: Callable[[], float | None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
) -> RetryReport[T]:
    """Post once, retrying per `policy`; after an uncertain failure, `lookup` decides.

    `lookup` returns the already-stored message (by client message id) or None; its own failures
    count as attempts. For idempotent reads pass ``client_message_id=None`` (exhaustion then
    raises TwilioUnavailableError instead of DeliveryError). `retry_after` returns the last
    answer's Retry-After, in seconds, if any.
    """
    run: _Run[T] = _Run(policy, client_message_id)
    for attempt in range(1, policy.max_attempts + 1):
        try:
            if run.start_lookup():
                found = lookup()
                if found is not None:
                    return run.done(found, attempt, by_lookup=True)
                run.lookup_pending = False
            return run.done(post(), attempt)
        except Exception as exc:
            delay = run.failed(exc, attempt, retry_after)
            if delay is not None:
                sleep(delay)
    found = None
    if run.final_lookup_due():
        with contextlib.suppress(Exception):
            found = lookup()
    return run.give_up(found)


async def send_with_retry_async(
    post: Callable[[], Awaitable[T]],
    lookup: Callable[[], Awaitable[T | None]],
    *,
    client_message_id: str | None,
    policy: RetryPolicy,
    retry_after: Callable[[], float | None] = lambda: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> RetryReport[T]:
    """The async twin of :func:`send_with_retry` (same policy and guarantees)."""
    run: _Run[T] = _Run(policy, client_message_id)
    for attempt in range(1, policy.max_attempts + 1):
        try:
            if run.start_lookup():
                found = await lookup()
                if found is not None:
                    return run.done(found, attempt, by_lookup=True)
                run.lookup_pending = False
            return run.done(await post(), attempt)
        except Exception as exc:
            delay = run.failed(exc, attempt, retry_after)
            if delay is not None:
                await sleep(delay)
    found = None
    if run.final_lookup_due():
        with contextlib.suppress(Exception):
            found = await lookup()
    return run.give_up(found)
