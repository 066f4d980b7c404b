"""Pause and resume of queues and workers, holding across worker restarts."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from deadletter.models import AuditEvent
from queues.jobs import enqueue, enqueue_many, get_job
from queues.ops.manager import pause_queue, queue_status, resume_queue
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import as_int, texts, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Q = "photo-processing"


def test_pause_stops_new_jobs_on_a_running_worker_within_two_seconds(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    worker_process((Q,), concurrency=1)
    running = enqueue(Q, "t-sleep", {"ms": 1500, "tag": "running"})
    wait_for(lambda: r.lrange("test:started", 0, -1) == [b"running"])
    pause_queue(Q, actor="ops")
    paused_at = time.monotonic()
    later = enqueue_many(Q, "t-sleep", [{"tag": f"later-{n}"} for n in range(3)])
    assert running.wait(10).state == "completed", "a job already running finishes"
    time.sleep(max(0.0, paused_at + 2.5 - time.monotonic()))
    assert r.lrange("test:started", 0, -1) == [b"running"], "nothing new starts while paused"
    assert queue_status(Q).is_paused
    states = [get_job(Q, h.id).state for h in later]
    assert set(states) <= {"waiting", "paused"}
    # Resume releases exactly the jobs a worker fetched and parked; waiting ones
    # were never taken and simply run.
    assert resume_queue(Q, actor="ops") == states.count("paused")
    assert r.zcard(keys.state_index(Q, "paused")) == 0
    for handle in later:
        assert handle.wait(10).state == "completed"
        assert as_int(r.get(t.runs_key(handle.id))) == 1
    assert [e.action for e in AuditEvent.objects.order_by("pk")] == ["pause", "resume"]


def test_pause_holds_across_a_worker_restart(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    first = worker_process((Q,), concurrency=1, name="before")
    pause_queue(Q)
    first.stop()
    worker_process((Q,), concurrency=1, name="after")
    handles = enqueue_many(Q, "t-sleep", [{"tag": f"j{n}"} for n in range(5)])
    time.sleep(2.5)
    assert r.llen("test:started") == 0, "a worker started after the pause must not run jobs"
    resume_queue(Q)
    for handle in handles:
        assert handle.wait(10).state == "completed"
        assert as_int(r.get(t.runs_key(handle.id))) == 1
    assert texts(r.lrange("test:started", 0, -1)) == [
        f"j{n}" for n in range(5)]


def test_jobs_fetched_before_a_worker_notices_are_parked_and_released_in_order(
        r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    # The flag is set behind the worker's back (no broadcast): until its next
    # one-second sync it still fetches, and claim-time parking stops the jobs.
    r.hset(keys.meta(Q), "paused", "1")
    handles = enqueue_many(Q, "t-sleep", [{"tag": f"p{n}"} for n in range(3)])
    time.sleep(1.5)
    assert r.llen("test:started") == 0
    states = [get_job(Q, h.id).state for h in handles]
    assert set(states) <= {"waiting", "paused"}
    assert resume_queue(Q) == states.count("paused"), "resume counts the jobs it released"
    for handle in handles:
        assert handle.wait(10).state == "completed"
        assert as_int(r.get(t.runs_key(handle.id))) == 1
    assert texts(r.lrange("test:started", 0, -1)) == ["p0", "p1", "p2"]
