"""Tracked jobs through a real Celery worker (solo pool, in a thread of this process)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from celery import Task

from coordinator_project.celery import app
from queues.jobs import enqueue, enqueue_many, get_job
from queues.ops.manager import queue_status
from queues.signals import job_failed
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import as_int, wait_for

Q = "photo-processing"


def test_job_runs_and_reports_result_progress_and_logs(inprocess_worker: Any) -> None:
    inprocess_worker()
    handle = t.report.delay({})
    assert handle.get(timeout=10) == "reported"
    info = get_job(Q, handle.id)
    assert info.state == "completed" and info.progress == 100 and info.attempts == 1
    assert [entry["message"] for entry in info.logs] == ["step 25", "step 50", "step 100"]
    assert info.logs[0]["level"] == "debug" and info.logs[0]["metadata"] == {"step": 25}
    assert info.processed_at is not None and info.finished_at is not None
    assert info.created_at is not None
    assert info.processed_at <= info.finished_at and info.created_at <= info.processed_at


def test_same_message_published_twice_runs_once(r: redis.Redis, inprocess_worker: Any) -> None:
    handle = t.echo.delay(value=5)
    [message] = r.lrange(Q, 0, -1)
    r.lpush(Q, message)  # a duplicate delivery of the very same message
    inprocess_worker()
    handle.wait(10)
    wait_for(lambda: r.llen(Q) == 0)
    wait_for(lambda: not r.hlen("unacked"))
    assert as_int(r.get(t.runs_key(handle.id))) == 1
    assert get_job(Q, handle.id).state == "completed"


def test_failure_is_recorded_and_announced_once(r: redis.Redis, inprocess_worker: Any) -> None:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    job_failed.connect(receiver, dispatch_uid="test-failed")
    try:
        inprocess_worker()
        handle = t.invalid.delay({})
        info = handle.wait(10)
        wait_for(lambda: seen)  # receivers run after the record is final
    finally:
        job_failed.disconnect(dispatch_uid="test-failed")
    assert info.state == "failed"
    assert (info.error_type, info.error, info.failed_reason) == (
        "ValidationError", "bad input in job", "non_retryable_error")
    assert as_int(r.get(t.runs_key(handle.id))) == 1  # non-retryable: one attempt of five
    assert len(seen) == 1 and seen[0]["job_id"] == handle.id
    assert "Traceback" in seen[0]["record"]["traceback"]


def test_unserialisable_result_fails_the_job(inprocess_worker: Any) -> None:
    inprocess_worker()
    info = t.unserialisable.delay({}).wait(10)
    assert info.state == "failed" and info.error_type == "TypeError"


def test_remove_on_complete_keeps_the_newest(r: redis.Redis, inprocess_worker: Any) -> None:
    handles = enqueue_many(Q, "t-sleep", [{"tag": n} for n in range(5)], remove_on_complete=2)
    gone = t.sleep_job.apply_async(({},), remove_on_complete=True)
    inprocess_worker()
    wait_for(lambda: r.zcard(keys.state_index(Q, "completed")) == 2 and r.llen(Q) == 0)
    wait_for(lambda: not r.exists(keys.job(Q, gone.id)))
    kept = set(r.zrange(keys.state_index(Q, "completed"), 0, -1))
    assert kept == {h.id.encode() for h in handles[-2:]}
    assert not r.exists(keys.job(Q, handles[0].id))


def test_queue_status_counts_while_workers_run(r: redis.Redis, inprocess_worker: Any) -> None:
    enqueue(Q, "t-sleep", {"ms": 1500, "tag": "long"})
    enqueue_many(Q, "t-sleep", [{"ms": 0}] * 3)
    inprocess_worker()
    wait_for(lambda: r.lrange("test:started", 0, -1) == [b"long"])
    status = queue_status(Q)
    assert status.job_counts["active"] == 1 and status.job_counts["waiting"] == 3
    wait_for(lambda: queue_status(Q).job_counts["completed"] == 4)
    done = queue_status(Q)
    assert done.job_counts["waiting"] == done.job_counts["active"] == 0
    # Four jobs on a queue less than a minute old: the window covers one minute, not five.
    assert done.processing_rate == pytest.approx(4.0)
    assert done.average_processing_time > 1500 / 4


def test_message_sent_without_the_coordinator_is_adopted(inprocess_worker: Any) -> None:
    inprocess_worker()
    Task.apply_async(app.tasks[t.echo.name], args=({"value": 9},), task_id="raw-celery-id")
    info = wait_for(lambda: _completed(Q, "raw-celery-id"))
    assert info.result == {"value": 9, "attempt": 1}


@pytest.mark.django_db(transaction=True)
def test_an_adopted_message_over_the_payload_limit_is_dead_lettered(
        r: redis.Redis, inprocess_worker: Any) -> None:
    from django.test import override_settings

    from deadletter.models import DeadLetter

    inprocess_worker()
    with override_settings(COORDINATOR_MAX_JOB_DATA_SIZE=1000):
        Task.apply_async(app.tasks[t.echo.name], args=({"value": 1, "note": "n" * 2000},),
                         task_id="raw-too-big")
        row = wait_for(lambda: DeadLetter.objects.filter(job_id="raw-too-big").first())
    assert (row.error_type, row.reason) == ("PayloadTooLarge", "non_retryable_error")
    assert "1000" in row.error_message and "{'value': 1, 'note': 'nnn" in row.payload
    assert r.get(t.runs_key("raw-too-big")) is None, "the refused message never ran"


def _completed(queue: str, job_id: str) -> Any:
    from queues.exceptions import JobNotFound

    try:
        info = get_job(queue, job_id)
    except JobNotFound:
        return None
    return info if info.state == "completed" else None
