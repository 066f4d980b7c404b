"""Rates computed from the per-minute buckets that the finish script writes.

Status, health, metrics and the autoscaler all read rates here (DESIGN §8.9).
"""

from __future__ import annotations

from dataclasses import dataclass

from queues import keys, store


@dataclass(frozen=True)
class WindowStats:
    """Totals over a rolling window of whole minutes (the current one included)."""

    minutes: int
    completed: int
    failed: int
    processing_ms: int
    wait_ms: int

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def processing_rate(self) -> float:
        """Jobs finished per minute."""
        return self.finished / self.minutes

    @property
    def average_processing_time(self) -> float:
        """Milliseconds per finished job (0 when none finished)."""
        return self.processing_ms / self.finished if self.finished else 0.0

    @property
    def average_wait_time(self) -> float:
        """Milliseconds from runnable to started, per finished job."""
        return self.wait_ms / self.finished if self.finished else 0.0

    @property
    def error_rate(self) -> float:
        return self.failed / self.finished if self.finished else 0.0


def window(queue: str, minutes: int = 5) -> WindowStats:
    """Sum the last ``minutes`` per-minute buckets of ``queue``."""
    current = store.now_ms() // 60000
    prefix = keys.stats_bucket_prefix(queue)
    with store.backend():
        pipe = store.client().pipeline(transaction=False)
        for minute in range(current - minutes + 1, current + 1):
            pipe.hmget(f"{prefix}{minute}", "completed", "failed", "proc_ms", "wait_ms")
        rows = pipe.execute()
    totals = [sum(int(row[i] or 0) for row in rows) for i in range(4)]
    return WindowStats(minutes, *totals)


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
    with store.backend():
        raw = {k.decode(): int(v) for k, v in store.client().hgetall(keys.stats(queue)).items()}

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
