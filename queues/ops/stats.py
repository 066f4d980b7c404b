"""Rates computed from the per-minute buckets that the transition scripts write.

The finish script counts every finished attempt's outcome and times; the claim
script (expired jobs) and the recovery script (stalled too often) count the
terminal failures that never reach it, as ``untimed``. Status, health, metrics
and the autoscaler all read rates here (DESIGN §8.9).
"""

from __future__ import annotations

from dataclasses import dataclass

from queues import store
from queues.store import stats as stats_store

# Rates are per minute: less than a minute of data is not extrapolated to one.
MIN_COVERED_MS = 60_000


@dataclass(frozen=True)
class WindowStats:
    """Totals over a rolling window of whole minutes (the current one included).

    ``covered_ms`` is the time the totals actually span: from the start of the
    window's oldest minute, or from the queue's first activity when that is
    later, to now. Rates divide by it, so a queue that started two minutes ago
    is not averaged over five.
    """

    minutes: int
    completed: int
    failed: int
    processing_ms: int
    wait_ms: int
    untimed: int = 0  # failures without a timed attempt (expired, stalled too often)
    covered_ms: int = 0  # 0: the whole window

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def timed(self) -> int:
        """Finished jobs whose last attempt ran to a recorded end."""
        return self.finished - self.untimed

    @property
    def covered_minutes(self) -> float:
        return (self.covered_ms or self.minutes * 60000) / 60000

    @property
    def processing_rate(self) -> float:
        """Jobs finished per minute of the time the window covers."""
        return self.finished / self.covered_minutes

    @property
    def average_processing_time(self) -> float:
        """Milliseconds per timed finished job (0 when none finished)."""
        return self.processing_ms / self.timed if self.timed else 0.0

    @property
    def average_wait_time(self) -> float:
        """Milliseconds from runnable to started, per timed finished job."""
        return self.wait_ms / self.timed if self.timed else 0.0

    @property
    def error_rate(self) -> float:
        return self.failed / self.finished if self.finished else 0.0


def window(queue: str, minutes: int = 5) -> WindowStats:
    """Sum the last ``minutes`` per-minute buckets of ``queue``.

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    now = store.now_ms()
    first_minute = now // 60000 - minutes + 1
    first_activity, rows = stats_store.minutes(queue, first_minute, minutes)
    completed, failed, proc_ms, wait_ms, untimed = (
        sum(row[i] for row in rows) for i in range(len(stats_store.MINUTE_FIELDS)))
    start = first_minute * 60000
    if first_activity is not None:
        start = max(start, int(first_activity))
    else:  # counters older than first_activity_ms: the oldest bucket present
        present = [i for i, row in enumerate(rows) if any(row)]
        start += 60000 * (present[0] if present else 0)
    return WindowStats(minutes, completed, failed, proc_ms, wait_ms, untimed,
                       covered_ms=max(now - start, MIN_COVERED_MS))


@dataclass(frozen=True)
class RetryStatistics:
    """Seed §7.1 ``RetryStatistics``, from counters the retry and finish scripts keep."""

    queue_name: str
    total_retries: int
    retries_by_attempt: dict[str, int]
    retries_by_error_type: dict[str, int]
    average_retry_delay: float  # milliseconds
    retry_success_rate: float  # of jobs that needed a retry, the share that completed


def retry_statistics(queue: str) -> RetryStatistics:
    """Retry figures of ``queue`` since its counters began."""
    raw = stats_store.counters(queue)

    def prefixed(prefix: str) -> dict[str, int]:
        return {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}

    total = raw.get("retries", 0)
    ok, bad = raw.get("retried_completed", 0), raw.get("retried_failed", 0)
    return RetryStatistics(
        queue_name=queue,
        total_retries=total,
        retries_by_attempt=prefixed("retry_attempt:"),
        retries_by_error_type=prefixed("retry_error:"),
        average_retry_delay=raw.get("retry_delay_ms", 0) / total if total else 0.0,
        retry_success_rate=ok / (ok + bad) if ok + bad else 0.0,
    )
