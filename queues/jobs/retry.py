"""Retry policy (seed §7.1) as data plus pure functions: no Redis here.

``decide`` says whether a failed attempt is retried and after how long; the
task base then moves the job back through the delayed set (never Celery's
countdown). Exponential backoff is ``delay * 2**(attempt-1)``; up to 10 %
jitter is added and the result is capped by ``max_delay`` (DESIGN §8.13:
jitter before the cap).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from queues.exceptions import NonRetryableError, RetryableJobError
from queues.options import Backoff

JITTER = 0.10
NON_RETRYABLE_MARKERS = ("INVALID_DATA", "PERMISSION_DENIED")


@dataclass(frozen=True)
class RetryDecision:
    """Retry after ``delay_ms``; ``None`` from ``decide`` means fail for good."""

    delay_ms: int


def backoff_delay(attempt: int, backoff: Backoff, *, rand: float | None = None) -> int:
    """The delay before the retry that follows failed attempt number ``attempt`` (1-based)."""
    base = backoff.delay if backoff.type == "fixed" else backoff.delay * 2 ** (attempt - 1)
    delay = base + base * JITTER * (random.random() if rand is None else rand)
    if backoff.type == "exponential":
        delay = min(delay, backoff.max_delay)
    return round(delay)


def is_non_retryable(exc: BaseException, extra: tuple[type[BaseException], ...] = ()) -> bool:
    """Seed §7.1: these classes (and subclasses) and the marked messages never retry."""
    if isinstance(exc, RetryableJobError):
        return False
    if isinstance(exc, (NonRetryableError, *extra)):
        return True
    message = str(exc)
    return any(marker in message for marker in NON_RETRYABLE_MARKERS)


def failure_reason(exc: BaseException, extra: tuple[type[BaseException], ...]) -> str:
    return "non_retryable_error" if is_non_retryable(exc, extra) else "max_attempts_exceeded"


def decide(exc: BaseException, *, attempt: int, max_attempts: int, backoff: Backoff,
           dont_retry: tuple[type[BaseException], ...] = ()) -> RetryDecision | None:
    """Retry, or ``None`` when attempts are exhausted or the error is non-retryable."""
    if attempt >= max_attempts or is_non_retryable(exc, dont_retry):
        return None
    return RetryDecision(backoff_delay(attempt, backoff))
