"""Exponential backoff through a real worker, measured from the job record's timestamps."""

from __future__ import annotations

from typing import Any

import redis

from queues.jobs import enqueue
from queues.ops.stats import retry_statistics
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import wait_for

Q = "photo-processing"
BASE_MS = 400  # long enough that a poll every 10 ms sees each delayed window
SLACK_MS = 1500  # an attempt's own run time, and the promoter, on a busy machine


def _delayed_after(r: redis.Redis, job_id: str, attempt: int) -> tuple[int, int]:
    """Wait for the job to sit delayed after ``attempt``; its (attempt start, due time)."""
    def seen() -> tuple[int, int] | None:
        state, made, started, due = r.hmget(keys.job(Q, job_id), "state", "attempts_made",
                                            "processed_at", "runnable_at")
        if state == b"delayed" and made is not None and int(made) == attempt:
            assert due is not None and started is not None
            return int(started), int(due)
        return None

    found: tuple[int, int] = wait_for(seen, timeout=15, interval=0.01)
    return found


def test_exponential_backoff_through_a_worker(r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    handle = enqueue(Q, "t-flaky", {"succeed_on": 4},
                     backoff={"type": "exponential", "delay": BASE_MS})
    windows = [_delayed_after(r, handle.id, attempt) for attempt in (1, 2, 3)]
    info = handle.wait(20)
    assert (info.state, info.attempts, info.result) == ("completed", 4, 4)
    assert info.processed_at is not None
    starts = [started for started, _due in windows] + [int(info.processed_at.timestamp() * 1000)]
    for n, (started, due) in enumerate(windows, start=1):
        wanted = BASE_MS * 2 ** (n - 1)  # 400, 800, 1600 ms
        # due = when the attempt failed + the backoff, so due - start >= the backoff;
        # jitter adds at most 10 %.
        assert wanted <= due - started <= wanted * 1.1 + SLACK_MS, (n, due - started)
        assert due <= starts[n] <= due + SLACK_MS, "the next attempt starts once due"
        assert wanted <= starts[n] - started, (n, starts[n] - started)
    # The retry script adds exactly each chosen delay (due - now) to the counters.
    total = BASE_MS * (1 + 2 + 4)
    assert retry_statistics(Q).total_retries == 3
    delays = r.hget(keys.stats(Q), "retry_delay_ms")
    assert delays is not None and total <= int(delays) <= total * 1.1 + 3
    assert r.get(t.runs_key(handle.id)) == b"4", "four runs, none twice"
