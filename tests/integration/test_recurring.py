"""Recurring jobs: validation, next run, once per tick across beats, max_runs, and a real beat."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from coordinator_project.celery import app as celery_app
from deadletter.models import AuditEvent
from queues.exceptions import (
    InvalidCronError,
    InvalidJobState,
    JobNotFound,
    JobValidationError,
    UnknownJobType,
)
from queues.jobs import get_job, task_name
from queues.jobs.producer import job_task
from queues.ops.beat import enqueue_run
from queues.ops.scheduling import (
    cancel_recurring,
    list_recurring,
    schedule_recurring,
    set_recurring_enabled,
    upcoming_runs,
)
from queues.store import keys
from tests.conftest import ROOT, texts, wait_for, worker_database_url

pytestmark = pytest.mark.django_db
Q = "photo-processing"


@pytest.mark.parametrize(("cron", "field"), [
    ("61 * * * *", "cron.minute"), ("* 24 * * *", "cron.hour"), ("* * 0 * *", "cron.day_of_month"),
    ("* * * 13 *", "cron.month_of_year"), ("* * * * 9", "cron.day_of_week"), ("* * *", "cron"),
])
def test_invalid_cron_names_the_field(cron: str, field: str) -> None:
    with pytest.raises(InvalidCronError) as info:
        schedule_recurring(Q, "t-echo", {"value": 1}, cron)
    assert info.value.field == field
    assert not PeriodicTask.objects.filter(name__startswith="recurring:").exists()


def test_other_bad_input() -> None:
    with pytest.raises(UnknownJobType):
        schedule_recurring(Q, "nope", {}, "* * * * *")
    with pytest.raises(JobValidationError, match="timezone"):
        schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *", timezone="Mars/Olympus")
    with pytest.raises(JobValidationError, match=r"data\.value"):
        schedule_recurring(Q, "t-echo", {"value": "x"}, "* * * * *")
    with pytest.raises(JobNotFound):
        cancel_recurring("999999")


def test_next_run_is_real_and_in_the_given_timezone(r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "30 9 * * 1", timezone="Europe/Paris",
                             actor="ops")
    assert job.next_run is not None and job.next_run > datetime.now(UTC)
    local = job.next_run.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 30)
    assert job.next_run - datetime.now(UTC) <= timedelta(days=7)
    [listed] = list_recurring(Q)
    assert (listed.id, listed.cron_expression, listed.timezone) == (
        job.id, "30 9 * * 1", "Europe/Paris")
    cancel_recurring(job.id, actor="ops")
    assert list_recurring() == []
    assert [e.action for e in AuditEvent.objects.order_by("pk")] == [
        "recurring_create", "recurring_cancel"]


def _fire(row: PeriodicTask, at: datetime) -> Any:
    from celery.schedules import crontab

    return enqueue_run(job_task(row.task), row, at, crontab(minute="*"))


def test_two_beats_firing_one_tick_enqueue_one_job(r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 3}, "* * * * *", priority=2)
    row = PeriodicTask.objects.get(pk=job.id)
    tick = datetime(2030, 1, 1, 12, 0, 0, 300000, tzinfo=UTC)
    first, second = _fire(row, tick), _fire(row, tick + timedelta(seconds=1))
    assert first.created and not second.created and first.id == second.id
    assert first.id == f"recurring:{row.id}:20300101T120000Z"
    info = get_job(Q, first.id)
    assert (info.data, info.priority) == ({"value": 3, "note": ""}, 2)
    assert r.zcard(keys.state_index(Q, "waiting")) == 1


def test_max_runs_stops_the_schedule(r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *", max_runs=2)
    row = PeriodicTask.objects.get(pk=job.id)
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    fired = [_fire(row, start + timedelta(minutes=n)) for n in range(4)]
    assert [bool(f and f.created) for f in fired] == [True, True, False, False]
    row.refresh_from_db()
    assert not row.enabled
    assert list_recurring()[0].runs == 2


@pytest.mark.django_db(transaction=True)
def test_a_real_beat_enqueues_through_the_coordinator(
        r: redis.Redis, builtin_queue_types: None, tmp_path: Any) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="test clean-queue", interval=every, queue="maintenance",
                                task=task_name("maintenance", "clean-queue"),
                                kwargs=json.dumps({"queue": Q}))
    log = (tmp_path / "beat.log").open("wb")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "coordinator_project", "beat", "-l", "INFO",
         "-s", str(tmp_path / "beat-schedule"), "--pidfile", str(tmp_path / "beat.pid")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**__import__("os").environ, "DATABASE_URL": worker_database_url()})
    try:
        wait_for(lambda: r.zcard(keys.state_index("maintenance", "waiting")) >= 2, timeout=30)
    finally:
        beat.terminate()
        # Beat syncs its schedule to SQL on SIGTERM; on SQLite that can wait out a lock
        # (the 20 s busy timeout of coordinator_project.settings) before it exits.
        beat.wait(60)
    ids = texts(r.zrange(keys.state_index("maintenance", "waiting"), 0, -1))
    assert all(i.startswith("recurring:") for i in ids), ids
    assert get_job("maintenance", ids[0]).name == "clean-queue"


def _beat_entry(row: PeriodicTask) -> ModelEntry:
    """The entry django-celery-beat's scheduler builds from ``row`` (when it reloads)."""
    return ModelEntry(row, app=celery_app)


def test_disable_and_enable_are_audited_once_and_report_the_state(r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "*/10 * * * *")
    off = set_recurring_enabled(job.id, False, actor="ops")
    assert (off.enabled, off.next_run) == (False, None)
    assert not PeriodicTask.objects.get(pk=job.id).enabled
    assert set_recurring_enabled(job.id, False, actor="ops") == off  # already: a no-op
    on = set_recurring_enabled(job.id, True, actor="ops")
    assert on.enabled and on.next_run is not None and on.next_run > datetime.now(UTC)
    events = AuditEvent.objects.order_by("pk").values_list("action", "actor", "target_type",
                                                          "target_id", "queue")
    assert list(events) == [
        ("recurring_create", "system", "recurring", job.id, Q),
        ("disable_recurring", "ops", "recurring", job.id, Q),
        ("enable_recurring", "ops", "recurring", job.id, Q)]
    with pytest.raises(JobNotFound):
        set_recurring_enabled("999999", True)
    with pytest.raises(JobNotFound):
        set_recurring_enabled("not-an-id", False)


def test_disabling_tells_beat_and_beat_stops_firing_it(r: redis.Redis) -> None:
    from django_celery_beat.models import PeriodicTasks

    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *")
    before = PeriodicTasks.last_change()
    set_recurring_enabled(job.id, False)
    changed = PeriodicTasks.last_change()
    assert changed is not None and (before is None or changed > before)
    assert not _beat_entry(PeriodicTask.objects.get(pk=job.id)).is_due().is_due
    assert job.id not in {str(row.pk) for row in PeriodicTask.objects.enabled()}


@pytest.mark.parametrize("disabled_by", ["the service", "beat (max_runs, an UPDATE)"])
def test_enabling_again_fires_at_the_next_tick_not_at_once_to_catch_up(
        r: redis.Redis, disabled_by: str) -> None:
    # A start date in the past: django-celery-beat then takes a missing last_run_at as
    # 30 years ago, and a stale one as the last fire, and fires at once either way.
    now = datetime.now(UTC)
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *",
                             start_date=now - timedelta(days=1))
    PeriodicTask.objects.filter(pk=job.id).update(last_run_at=now - timedelta(hours=1))
    if disabled_by == "the service":
        set_recurring_enabled(job.id, False)
    else:
        PeriodicTask.objects.filter(pk=job.id).update(enabled=False)
    naive = PeriodicTask.objects.get(pk=job.id)
    naive.enabled = True  # what enabling without resetting last_run_at would give beat
    assert _beat_entry(naive).is_due().is_due
    set_recurring_enabled(job.id, True)
    due, wait = _beat_entry(PeriodicTask.objects.get(pk=job.id)).is_due()
    assert not due and 0 < wait <= 60


def test_a_schedule_that_ran_its_max_runs_cannot_be_enabled(r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *", max_runs=1)
    _fire(PeriodicTask.objects.get(pk=job.id), datetime(2030, 1, 1, 12, tzinfo=UTC))
    assert not PeriodicTask.objects.get(pk=job.id).enabled
    with pytest.raises(InvalidJobState, match="has run 1 of max_runs=1"):
        set_recurring_enabled(job.id, True)
    assert not PeriodicTask.objects.get(pk=job.id).enabled
    assert not AuditEvent.objects.filter(action="enable_recurring").exists()


def test_each_run_is_counted_with_the_job_it_created(r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *")
    assert (job.runs, job.last_job_id) == (0, None)
    row = PeriodicTask.objects.get(pk=job.id)
    first = _fire(row, datetime(2030, 1, 1, 12, tzinfo=UTC))
    _fire(row, datetime(2030, 1, 1, 12, 0, 1, tzinfo=UTC))  # the same tick: no new run
    second = _fire(row, datetime(2030, 1, 1, 12, 1, tzinfo=UTC))
    [listed] = list_recurring(Q)
    assert (listed.runs, listed.last_job_id) == (2, second.id)
    assert first.id != second.id and get_job(Q, second.id).state == "waiting"
    cancel_recurring(job.id)
    assert r.exists(keys.recurring_runs(row.pk), keys.recurring_last_job(row.pk)) == 0


def test_upcoming_runs_stop_at_the_end_date_and_the_runs_left(r: redis.Redis) -> None:
    start = datetime.now(UTC)
    ends = schedule_recurring(Q, "t-echo", {"value": 1}, "0 * * * *",
                              end_date=start + timedelta(hours=2))
    assert len(upcoming_runs(ends)) == 2
    capped = schedule_recurring(Q, "t-echo", {"value": 1}, "0 * * * *", max_runs=2)
    assert [t.minute for t in upcoming_runs(capped)] == [0, 0]
    hourly = schedule_recurring(Q, "t-echo", {"value": 1}, "0 * * * *")
    times = upcoming_runs(hourly)
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(hours=1)] * 2
    assert upcoming_runs(set_recurring_enabled(hourly.id, False)) == []


def test_a_recurring_job_may_throttle_but_not_debounce(r: redis.Redis) -> None:
    with pytest.raises(JobValidationError, match="cannot debounce") as info:
        schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *",
                           dedup={"key": "nightly", "ttl_ms": 60_000, "mode": "debounce"})
    assert info.value.field == "dedup.mode"
    assert not PeriodicTask.objects.filter(name__startswith="recurring:").exists()
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *",
                             dedup={"key": "nightly", "ttl_ms": 3_600_000})
    row = PeriodicTask.objects.get(pk=job.id)
    tick = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    first, second = _fire(row, tick), _fire(row, tick + timedelta(minutes=1))
    assert first.created and not second.created, "the next tick within the ttl is throttled"
    assert second.id == first.id
    assert r.zcard(keys.state_index(Q, "waiting")) == 1
