"""Lost children, lost workers, stalled and expired jobs, with real worker processes."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import psutil
import pytest
import redis
from django.test import override_settings

from queues.jobs import enqueue, get_job
from queues.models import QueueType
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import resilience_queue_type, wait_for

pytestmark = pytest.mark.django_db
R = t.RESILIENCE
FAST = {"WORKER_STALLED_INTERVAL": "2000", "WORKER_HEARTBEAT_INTERVAL": "500"}


@pytest.fixture
def resilience_queue() -> QueueType:
    """A queue type whose locks expire after 2 s, so lost workers are found quickly."""
    return resilience_queue_type(stalled_interval_ms=2000, max_stalled_count=1)


def _children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children()


def _runs(r: redis.Redis, job_id: str) -> int:
    return int(r.get(t.runs_key(job_id)) or 0)


def _runs_are(r: redis.Redis, job_id: str, runs: int) -> bool:
    return _runs(r, job_id) == runs


def test_killed_pool_child_hands_the_job_back_at_once(
        r: redis.Redis, resilience_queue: QueueType, worker_process: Any) -> None:
    # A 60 s lock: within the test's time only the main process's lost-child
    # handling (not lock expiry) can bring the job back. Celery notices a
    # dead child within its pool-maintenance interval (up to ~5 s).
    QueueType.objects.filter(name=R).update(stalled_interval_ms=60000)
    worker = worker_process((R,), concurrency=1)
    handle = enqueue(R, "t-work", {"ms": 1500})
    wait_for(lambda: _runs(r, handle.id) == 1)
    [child] = _children(worker.pid)
    child.kill()
    info = handle.wait(15)
    assert info.state == "completed"
    assert _runs(r, handle.id) == 2
    assert r.hget(keys.job(R, handle.id), "stalled_count") == b"1"


def test_job_of_a_killed_worker_is_recovered_by_another(
        r: redis.Redis, resilience_queue: QueueType, worker_process: Any) -> None:
    doomed = worker_process((R,), concurrency=1, name="doomed", env=FAST)
    handle = enqueue(R, "t-work", {"ms": 3000})
    queued = enqueue(R, "t-work", {"ms": 10})  # reserved by nobody yet, or stranded
    wait_for(lambda: _runs(r, handle.id) == 1)
    for proc in [*_children(doomed.pid), psutil.Process(doomed.pid)]:
        proc.kill()
    worker_process((R,), concurrency=1, name="rescuer", env=FAST)
    assert handle.wait(20).state == "completed"
    assert queued.wait(20).state == "completed"
    assert _runs(r, handle.id) == 2 and _runs(r, queued.id) == 1
    # The dead worker's reservations were dropped with the recovery, not left for
    # kombu to redeliver after visibility_timeout. The job's record says completed
    # a moment before the rescuer acks its own message, so wait for that ack.
    wait_for(lambda: not [m for m in r.hvals("unacked")
                          if handle.id.encode() in m or queued.id.encode() in m], timeout=5)


def test_a_job_that_keeps_killing_its_worker_fails_as_stalled(
        r: redis.Redis, resilience_queue: QueueType, worker_process: Any) -> None:
    worker = worker_process((R,), concurrency=1, env=FAST)
    handle = enqueue(R, "t-work", {"ms": 5000})
    for run in (1, 2):
        wait_for(partial(_runs_are, r, handle.id, run), timeout=10)
        [child] = _children(worker.pid)
        child.kill()
    info = wait_for(lambda: (i := get_job(R, handle.id)).state == "failed" and i, timeout=10)
    assert info.failed_reason == "stalled"
    assert _runs(r, handle.id) == 2  # maxStalledCount 1: one recovery, then failed


def test_job_older_than_max_job_age_fails_as_expired(
        r: redis.Redis, inprocess_worker: Any) -> None:
    handle = t.echo.delay(value=1)
    time.sleep(0.3)
    with override_settings(COORDINATOR_MAX_JOB_AGE=200):
        inprocess_worker()
        info = handle.wait(10)
    assert (info.state, info.failed_reason) == ("failed", "expired")
    assert r.get(t.runs_key(handle.id)) is None


def test_delay_does_not_count_toward_max_job_age(r: redis.Redis, inprocess_worker: Any) -> None:
    with override_settings(COORDINATOR_MAX_JOB_AGE=300):
        handle = t.echo.apply_async(({"value": 1},), delay_ms=600)
        inprocess_worker()
        assert handle.wait(10).state == "completed"


def test_heartbeat_keeps_a_long_job_locked(
        r: redis.Redis, resilience_queue: QueueType, worker_process: Any) -> None:
    """A job running 3x its 2 s lock on a live worker is never taken for stalled."""
    worker_process((R,), concurrency=1, env=FAST)
    worker_process((R,), concurrency=1, name="sweeper", env=FAST)
    handle = enqueue(R, "t-work", {"ms": 6000})
    info = handle.wait(20)
    assert info.state == "completed"
    assert _runs(r, handle.id) == 1
    assert r.hget(keys.job(R, handle.id), "stalled_count") is None
