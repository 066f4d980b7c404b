"""Time limits are attempts (DESIGN §8.23), in a real prefork worker.

A hard limit kills the pool child: the attempt fails with ``TimeLimitExceeded``
and is retried by the job's attempts and backoff like any error; the last one
fails the job as ``timeout``. A soft limit raises ``SoftTimeLimitExceeded`` in
the job, which may clean up or let it end the attempt. The queue type sets the
default limits; a job declaration overrides them.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from deadletter.models import DeadLetter
from queues.jobs import enqueue
from queues.models import QueueType
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import as_int, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
Q = t.TIMEOUTS
QUEUE_TYPE_LIMIT_MS = 1500


@pytest.fixture
def timeouts_queue(builtin_queue_types: None) -> QueueType:
    return QueueType.objects.create(
        name=Q, display_name="Timeouts", time_limit_ms=QUEUE_TYPE_LIMIT_MS,
        remove_on_complete=False, remove_on_fail=False)


def dead_letter(job_id: str) -> DeadLetter:
    return wait_for(lambda: DeadLetter.objects.filter(job_id=job_id).first(), timeout=30)


def test_hard_limit_fails_the_attempt_retries_then_dead_letters_as_timeout(
        r: redis.Redis, timeouts_queue: QueueType, worker_process: Any) -> None:
    worker_process((Q,), concurrency=1)
    handle = enqueue(Q, "t-overrun", {"ms": 30000})  # the queue type's 1.5 s limit kills it
    info = handle.wait(60)
    assert (info.state, info.failed_reason, info.error_type) == (
        "failed", "timeout", "TimeLimitExceeded")
    assert info.attempts == 2 and as_int(r.get(t.runs_key(handle.id))) == 2, "retried once"
    assert "hard time limit (1.5 s)" in (info.error or "")
    stats = r.hgetall(keys.stats(Q))
    assert stats[b"retry_error:TimeLimitExceeded"] == b"1"
    assert b"stalled" not in stats, "a time-out is not a lost worker"
    row = dead_letter(handle.id)
    assert (row.reason, row.error_type, row.attempts) == ("timeout", "TimeLimitExceeded", 2)


def test_job_declaration_overrides_the_queue_types_hard_limit(
        r: redis.Redis, timeouts_queue: QueueType, worker_process: Any) -> None:
    worker_process((Q,), concurrency=1)
    # Declared 0.6 s: killed before the queue type's 1.5 s would be reached.
    short = enqueue(Q, "t-overrun-short", {"ms": 1200}).wait(60)
    assert (short.state, short.failed_reason, short.error_type) == (
        "failed", "timeout", "TimeLimitExceeded")
    # Declared 8 s (Celery's seconds): runs past the queue type's 1.5 s and completes.
    long = enqueue(Q, "t-overrun-long", {"ms": 2500}).wait(60)
    assert (long.state, long.result) == ("completed", 2500)
    assert dead_letter(short.id).reason == "timeout"


def test_soft_limit_is_raised_in_the_job_which_may_clean_up_or_fail(
        r: redis.Redis, timeouts_queue: QueueType, worker_process: Any) -> None:
    worker_process((Q,), concurrency=1)
    caught = enqueue(Q, "t-soft-caught", {"ms": 10000}).wait(60)
    assert (caught.state, caught.result) == ("completed", "cleaned up")
    failing = enqueue(Q, "t-soft-fails", {"ms": 10000})
    info = failing.wait(60)
    assert (info.state, info.failed_reason, info.error_type, info.attempts) == (
        "failed", "timeout", "SoftTimeLimitExceeded", 2)
    assert as_int(r.get(t.runs_key(failing.id))) == 2
    row = dead_letter(failing.id)
    assert (row.reason, row.error_type) == ("timeout", "SoftTimeLimitExceeded")
    assert "SoftTimeLimitExceeded" in row.traceback
