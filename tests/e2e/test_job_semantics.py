"""Delays, retries, priorities, de-duplication, cancellation through a real worker."""

from __future__ import annotations

import multiprocessing
import random
from typing import Any

import pytest
import redis

from queues import store
from queues.exceptions import InvalidJobState, JobNotFound, JobValidationError
from queues.jobs import cancel_job, change_priority, enqueue, enqueue_many, get_job, scheduled_jobs
from queues.ops.stats import retry_statistics
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import as_int, texts, wait_for

Q = "photo-processing"


def test_delayed_job_waits_in_redis_then_runs_after_its_due_time(
        r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    handle = t.echo.apply_async(({"value": 1},), delay_ms=400)
    assert get_job(Q, handle.id).state == "delayed"
    assert r.llen(Q) == 0, "a delayed job has no broker message until it is due"
    [scheduled] = scheduled_jobs(Q)
    assert scheduled.id == handle.id and scheduled.name == "t-echo"
    info = handle.wait(10)
    assert info.state == "completed"
    assert info.processed_at is not None and info.run_at is not None
    assert info.processed_at >= info.run_at
    assert (info.processed_at - info.run_at).total_seconds() < 0.5


def test_countdown_maps_to_a_broker_side_delay(r: redis.Redis, builtin_queue_types: None) -> None:
    handle = t.echo.apply_async(({"value": 1},), countdown=30)
    info = get_job(Q, handle.id)
    assert info.state == "delayed" and r.llen(Q) == 0
    assert info.run_at is not None and info.created_at is not None
    assert 29 < (info.run_at - info.created_at).total_seconds() <= 30


def test_delays_survive_worker_restarts(r: redis.Redis, inprocess_worker: Any) -> None:
    handles = enqueue_many(Q, "t-echo", [{"value": n} for n in range(20)], delay_ms=200)
    due_ms = max(int(r.hget(keys.job(Q, h.id), "runnable_at") or 0) for h in handles)
    assert due_ms > 0
    # Every due time passes (by the clock the promoter uses) while no worker runs.
    wait_for(lambda: store.now_ms() > due_ms, timeout=5)
    assert [get_job(Q, h.id).state for h in handles] == ["delayed"] * 20
    assert r.zcard(keys.state_index(Q, "delayed")) == 20 and r.llen(Q) == 0
    inprocess_worker()
    for h in handles:
        assert h.wait(10).state == "completed"
        assert as_int(r.get(t.runs_key(h.id))) == 1


def test_retries_with_backoff_until_success(r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    handle = t.flaky.delay({"succeed_on": 3})
    info = handle.wait(10)
    assert (info.state, info.result, info.attempts) == ("completed", 3, 3)
    assert as_int(r.get(t.runs_key(handle.id))) == 3
    stats = retry_statistics(Q)
    assert stats.total_retries == 2
    assert stats.retries_by_attempt == {"1": 1, "2": 1}
    assert stats.retries_by_error_type == {"ConnectionError": 2}
    assert 50 <= stats.average_retry_delay <= 55  # fixed 50 ms plus up to 10 % jitter
    assert stats.retry_success_rate == 1.0


def test_attempts_exhausted_fail_with_reason(r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    info = t.flaky.delay({"succeed_on": 99}).wait(10)
    assert (info.state, info.failed_reason, info.attempts) == (
        "failed", "max_attempts_exceeded", 4)
    assert info.error_type == "ConnectionError"
    assert retry_statistics(Q).retry_success_rate == 0.0


def test_declared_and_builtin_non_retryable_errors_fail_at_once(
        r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    declared = t.declared_fatal.delay({}).wait(10)
    marked = t.boom.apply_async(({"message": "upstream: INVALID_DATA"},), attempts=5).wait(10)
    for info in (declared, marked):
        assert (info.state, info.failed_reason, info.attempts) == (
            "failed", "non_retryable_error", 1)


def test_backlog_starts_in_priority_order_fifo_within_level(
        r: redis.Redis, inprocess_worker: Any) -> None:
    levels = list(range(10)) * 4
    random.Random(7).shuffle(levels)
    plan = [(priority, n) for n, priority in enumerate(levels)]
    for priority, n in plan:
        enqueue(Q, "t-sleep", {"tag": f"{priority}-{n:02d}"}, priority=priority)
    inprocess_worker()
    wait_for(lambda: r.llen("test:started") == 40)
    started = texts(r.lrange("test:started", 0, -1))
    expected = [f"{p}-{n:02d}" for p, n in sorted(plan)]  # by level, then enqueue order
    assert started == expected


def test_change_priority_runs_the_job_once_at_its_new_priority(
        r: redis.Redis, inprocess_worker: Any) -> None:
    for n in range(5):
        enqueue(Q, "t-sleep", {"tag": f"low-{n}"}, priority=5)
    moved = enqueue(Q, "t-sleep", {"tag": "moved"}, priority=9)
    later = enqueue(Q, "t-echo", {"value": 1}, delay_ms=60000, priority=9)
    change_priority(Q, moved.id, 0)
    change_priority(Q, later.id, 1)
    assert get_job(Q, moved.id).priority == 0 and get_job(Q, later.id).priority == 1
    inprocess_worker()
    wait_for(lambda: r.llen("test:started") == 6 and r.llen(f"{Q}\x06\x169") == 0)
    wait_for(lambda: r.llen(Q) == 0)
    assert r.lindex("test:started", 0) == b"moved"
    assert as_int(r.get(t.runs_key(moved.id))) == 1, "the superseded message was a no-op"
    with pytest.raises(InvalidJobState, match="completed"):
        change_priority(Q, moved.id, 3)
    with pytest.raises(JobValidationError):
        change_priority(Q, later.id, 10)
    with pytest.raises(JobNotFound):
        change_priority(Q, "missing", 1)


def _enqueue_same_id(_: int) -> bool:
    import django

    django.setup()
    from queues.jobs import enqueue as enq

    return enq(Q, "t-echo", {"value": 1}, job_id="only-once").created


def test_concurrent_enqueues_of_one_id_create_one_job(
        r: redis.Redis, builtin_queue_types: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import worker_database_url

    # The spawned processes read the test database (the registry), not the default one.
    monkeypatch.setenv("DATABASE_URL", worker_database_url())
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        created = pool.map(_enqueue_same_id, range(4))
    assert sorted(created) == [False, False, False, True]
    assert r.llen(Q) == 1 and r.zcard(keys.state_index(Q, "waiting")) == 1


def test_cancel_waiting_delayed_and_active_jobs(r: redis.Redis, inprocess_worker: Any) -> None:
    waiting = t.echo.delay(value=1)
    delayed = t.echo.apply_async(({"value": 2},), delay_ms=200)
    assert cancel_job(Q, waiting.id) == "cancelled"
    assert cancel_job(Q, delayed.id) == "cancelled"
    running = t.cooperative.delay({"ms": 10000})
    inprocess_worker()
    wait_for(lambda: r.lrange("test:started", 0, -1) == [running.id.encode()])
    assert cancel_job(Q, running.id) == "requested"
    info = running.wait(10)
    assert (info.state, info.result) == ("completed", "stopped")
    import time

    time.sleep(0.4)  # past the delayed job's due time
    for handle in (waiting, delayed):
        assert get_job(Q, handle.id).state == "cancelled"
        assert r.get(t.runs_key(handle.id)) is None, "a cancelled job never runs"
    with pytest.raises(InvalidJobState, match="cancelled"):
        cancel_job(Q, waiting.id)
    with pytest.raises(JobNotFound):
        cancel_job(Q, "missing")
