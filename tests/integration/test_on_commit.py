"""Enqueue inside a Django transaction: recorded and published only once it commits.

``enqueue(..., on_commit=True)`` and the ``@job`` tasks' ``delay_on_commit`` /
``apply_async_on_commit`` (Celery's ``DjangoTask`` API). Real transactions
(``transaction=True``), on SQLite and, through ``tests.pg_cluster``, PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest
import redis
from django.contrib.auth.models import Group
from django.db import transaction

from coordinator_project.celery import app
from queues.exceptions import JobNotFound, JobValidationError
from queues.jobs import enqueue, get_job
from queues.jobs.messages import broker_key
from queues.store import keys
from tests import fixtures_tasks as t

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db(transaction=True)]
Q = "photo-processing"


class Rollback(Exception):
    """Raised to leave an ``atomic`` block by rolling it back."""


def waiting(r: redis.Redis) -> set[str]:
    return {m.decode() for m in cast(list[bytes], r.zrange(keys.state_index(Q, "waiting"), 0, -1))}


def messages(r: redis.Redis) -> int:
    """Broker messages of the queue, over its ten priority lists."""
    return sum(r.llen(broker_key(app, Q, p)) for p in range(10))


ENQUEUES: dict[str, Callable[[str], None]] = {
    "enqueue": lambda job_id: enqueue(Q, "t-echo", {"value": 1}, job_id=job_id,
                                      on_commit=True),
    "delay_on_commit": lambda job_id: t.echo.delay_on_commit(value=1, note=job_id),
    "apply_async_on_commit": lambda job_id: t.echo.apply_async_on_commit(
        ({"value": 1},), task_id=job_id, priority=3),
}


@pytest.mark.parametrize("how", sorted(ENQUEUES))
def test_nothing_is_recorded_until_the_transaction_commits(
        r: redis.Redis, builtin_queue_types: None, how: str) -> None:
    with transaction.atomic():
        Group.objects.create(name="made-with-the-job")
        ENQUEUES[how]("after-commit")
        assert waiting(r) == set() and messages(r) == 0, "nothing before the commit"
    [job_id] = waiting(r)
    assert messages(r) == 1, "one message, published with the record"
    info = get_job(Q, job_id)
    assert info.state == "waiting" and info.data["value"] == 1
    if how != "delay_on_commit":  # delay has no task_id; its id is generated
        assert job_id == "after-commit"
    if how == "apply_async_on_commit":
        assert info.priority == 3


@pytest.mark.parametrize("how", sorted(ENQUEUES))
def test_a_rolled_back_transaction_records_and_publishes_nothing(
        r: redis.Redis, builtin_queue_types: None, how: str) -> None:
    with pytest.raises(Rollback), transaction.atomic():
        Group.objects.create(name="rolled-back")
        ENQUEUES[how]("rolled-back")
        raise Rollback
    assert not Group.objects.filter(name="rolled-back").exists()
    assert waiting(r) == set() and messages(r) == 0
    assert not r.exists(keys.job(Q, "rolled-back"))
    with pytest.raises(JobNotFound):
        get_job(Q, "rolled-back")


def test_an_inner_savepoint_rolled_back_drops_only_its_jobs(
        r: redis.Redis, builtin_queue_types: None) -> None:
    with transaction.atomic():
        enqueue(Q, "t-echo", {"value": 1}, job_id="outer", on_commit=True)
        with pytest.raises(Rollback), transaction.atomic():
            enqueue(Q, "t-echo", {"value": 2}, job_id="inner", on_commit=True)
            raise Rollback
    assert waiting(r) == {"outer"}


@pytest.mark.parametrize("call", [
    lambda: enqueue(Q, "t-echo", {"value": "x"}, on_commit=True),
    lambda: enqueue(Q, "t-echo", {"value": 1}, priority=10, on_commit=True),
    lambda: t.echo.delay_on_commit(value=float("nan")),
    lambda: t.echo.apply_async_on_commit(({"value": 1},), task_id="has a space"),
])
def test_bad_input_is_refused_at_the_call_not_at_commit(
        r: redis.Redis, builtin_queue_types: None, call: Callable[[], None]) -> None:
    with transaction.atomic():
        with pytest.raises(JobValidationError):
            call()
        Group.objects.create(name="still-commits")
    assert Group.objects.filter(name="still-commits").exists()
    assert waiting(r) == set() and messages(r) == 0


def test_outside_a_transaction_it_enqueues_at_once(
        r: redis.Redis, builtin_queue_types: None) -> None:
    assert enqueue(Q, "t-echo", {"value": 1}, job_id="now", on_commit=True) is None
    t.echo.delay_on_commit(value=2)
    assert len(waiting(r)) == 2 and "now" in waiting(r)
