"""Rates computed from the per-minute buckets that the transition scripts write.

The finish script counts every finished attempt's outcome and times; the claim
script (expired jobs) and the recovery script (stalled too often) count the
terminal failures that never reach it, as ``untimed``. Status, health, metrics
and the autoscaler all read rates here (DESIGN §8.9).
"""

from __future__ import annotations

from dataclasses import dataclass

from queues import store
from queues.store import history
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


@dataclass(frozen=True)
class Series:
    """Finished jobs per time slot, oldest first: what the dashboard's charts draw."""

    slot_ms: int  # 60,000 (minutes) or 3,600,000 (hours)
    starts_ms: list[int]
    completed: list[int]
    failed: list[int]


def per_minute(queue: str, minutes: int = 60, *, now_ms: int | None = None) -> Series:
    """Completed and failed per minute over the last ``minutes`` (the current one included).

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    now = store.now_ms() if now_ms is None else now_ms
    first = now // 60_000 - minutes + 1
    _, rows = stats_store.minutes(queue, first, minutes)
    completed, failed = (stats_store.MINUTE_FIELDS.index(f) for f in ("completed", "failed"))
    return Series(60_000, [(first + n) * 60_000 for n in range(minutes)],
                  [row[completed] for row in rows], [row[failed] for row in rows])


def per_hour(queue: str, hours: int = 24, *, now_ms: int | None = None) -> Series:
    """Completed and failed per hour over the last ``hours`` (the current one included).

    Hours the maintenance job has rolled up come from the hourly hashes; the
    minutes after the last rolled one (the current hour, and the one before
    until the next roll-up) are summed from their minute buckets, so nothing is
    counted twice or missed.

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    now = store.now_ms() if now_ms is None else now_ms
    current_hour = now // 3_600_000
    first_hour = current_hour - hours + 1
    now_minute = now // 60_000
    last_rolled = history.last_rolled_minute(queue)
    if last_rolled is None:
        last_rolled = -1  # nothing rolled yet: no hourly hash holds anything
    # an hourly hash holds exactly its hour's minutes up to the last rolled one
    completed, failed = [0] * hours, [0] * hours
    for hour, row in history.hourly_stats(queue, list(range(first_hour, current_hour + 1))).items():
        if hour <= last_rolled // 60:
            completed[hour - first_hour] += row.get("completed", 0)
            failed[hour - first_hour] += row.get("failed", 0)
    # the rest from minute buckets, which live two hours
    unrolled_from = max(first_hour * 60, last_rolled + 1,
                        now_minute - store.STATS_BUCKET_TTL_MS // 60_000 + 1)
    minute_rows = per_minute(queue, max(0, now_minute - unrolled_from + 1), now_ms=now)
    for start, done, lost in zip(minute_rows.starts_ms, minute_rows.completed,
                                 minute_rows.failed, strict=True):
        slot = start // 3_600_000 - first_hour
        completed[slot] += done
        failed[slot] += lost
    return Series(3_600_000, [(first_hour + n) * 3_600_000 for n in range(hours)],
                  completed, failed)
