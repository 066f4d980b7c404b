"""Celery's ``expires=`` is a per-job deadline (seed §1.2, DESIGN §8.23).

A job whose attempt has not started by its deadline fails as ``expired`` at
claim and is dead-lettered; options the coordinator cannot honour are refused
by name, never dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from deadletter.models import DeadLetter
from queues import store
from queues.exceptions import JobValidationError
from queues.jobs import enqueue, get_job
from queues.ops import stats
from queues.ops.manager import pause_queue, resume_queue
from tests import fixtures_tasks as t
from tests.conftest import as_int, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Q = "photo-processing"


def assert_expired_by_deadline(job_id: str) -> None:
    info = get_job(Q, job_id)
    assert (info.state, info.failed_reason, info.error_type) == ("failed", "expired", "JobExpired")
    assert "deadline" in (info.error or "")
    row = wait_for(lambda: DeadLetter.objects.filter(job_id=job_id).first())
    assert row.reason == DeadLetter.Reason.EXPIRED


def test_apply_async_expires_fails_a_job_no_worker_started_in_time(
        r: redis.Redis, inprocess_worker: Any) -> None:
    late = t.echo.apply_async(({"value": 1},), expires=0.3)
    in_time = t.echo.apply_async(({"value": 2},), expires=600)
    deadline = store.now_ms() + 300
    wait_for(lambda: store.now_ms() > deadline + 50)
    inprocess_worker()
    assert late.wait(15).state == "failed" and in_time.wait(15).state == "completed"
    assert_expired_by_deadline(late.id)
    assert r.get(t.runs_key(late.id)) is None, "an expired job never runs"
    recent = stats.window(Q)
    assert (recent.completed, recent.failed) == (1, 1)


def test_enqueue_deadline_passes_while_the_queue_is_paused(
        r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    pause_queue(Q)
    handle = enqueue(Q, "t-echo", {"value": 3}, expires=datetime.now(UTC) + timedelta(seconds=1))
    deadline = int(get_job(Q, handle.id).options["deadline_ms"])
    wait_for(lambda: store.now_ms() > deadline + 50, timeout=5)
    assert get_job(Q, handle.id).state in ("waiting", "paused"), "paused: not started"
    resume_queue(Q)
    assert handle.wait(15).state == "failed"
    assert_expired_by_deadline(handle.id)


def test_a_retry_after_the_deadline_expires_too(r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    # Attempt 1 starts at once and fails; its retry is due after the deadline.
    handle = enqueue(Q, "t-flaky", {"succeed_on": 2}, expires=0.5,
                     backoff={"type": "fixed", "delay": 1500})
    assert handle.wait(15).state == "failed"
    assert as_int(r.get(t.runs_key(handle.id))) == 1
    assert_expired_by_deadline(handle.id)


@pytest.mark.parametrize(("expires", "message"), [
    (0, "could never start"), (-5, "could never start"), (True, "valid number"),
    (float("inf"), "finite"), (datetime(2030, 1, 1), "timezone-aware"),
    (datetime(2000, 1, 1, tzinfo=UTC), "could never start"), ("soon", "valid number"),
])
def test_bad_deadlines_are_refused(r: redis.Redis, builtin_queue_types: None,
                                   expires: Any, message: str) -> None:
    with pytest.raises(JobValidationError, match=message) as err:
        enqueue(Q, "t-echo", {"value": 1}, expires=expires)
    assert err.value.field is not None and err.value.field.startswith("expires")
    assert not r.keys("*job:*"), "nothing recorded"


def test_a_deadline_before_the_delay_ends_is_refused(r: redis.Redis,
                                                     builtin_queue_types: None) -> None:
    with pytest.raises(JobValidationError, match="could never start"):
        t.echo.apply_async(({"value": 1},), countdown=5, expires=2)
    assert not r.keys("*job:*")


@pytest.mark.parametrize(("option", "value"), [
    ("queue", "batch-processing"), ("routing_key", "elsewhere"), ("exchange", "direct"),
    ("serializer", "pickle"), ("headers", {"x": 1}), ("producer", object()),
    ("link", "some-task"), ("time_limit", 5),
])
def test_celery_options_the_coordinator_cannot_honour_are_refused_by_name(
        r: redis.Redis, builtin_queue_types: None, option: str, value: Any) -> None:
    with pytest.raises(JobValidationError) as err:
        t.echo.apply_async(({"value": 1},), **{option: value})
    assert err.value.field == option and option in str(err.value)
    assert not r.keys("*job:*")


def test_celery_options_restating_the_coordinators_choices_are_accepted(
        r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    handle = t.echo.apply_async(({"value": 9},), queue=Q, routing_key=Q, exchange="",
                                serializer="json", expires=None)
    assert handle.wait(15).state == "completed"
