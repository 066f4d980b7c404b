"""django-celery-beat's scheduler, with coordinator jobs enqueued once per fire time.

Run beat with it (the default in settings): ``celery -A coordinator_project beat``.
For an entry whose task is a ``@job``, the run is enqueued with
``job_id="recurring:<entry id>:<nominal tick>"``: a second beat, or a retry,
firing the same tick finds the job already there (de-duplication), so a tick
runs once. Each run of a recurring job (``schedule_recurring``) is counted in
Redis, with the id of the job it created, by the enqueue that created it
(django-celery-beat's ``total_run_count`` is per beat process and written back
only every few minutes); ``max_runs`` reads that count.

A crontab entry is due by ``queues.ops.scheduling.next_run``, and its tick is
``previous_run``: the fire times the coordinator shows are the ones beat fires, with
their rule for daylight-saving changes (each wall-clock time once; once per real hour
for a schedule that runs every hour), computed with croniter and zoneinfo and compared
in UTC. Celery's own ``crontab.is_due`` works on wall times and goes wrong across a
change (celery#1604, celery#6438, django-celery-beat#134, django-celery-beat#194).
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import crontab, schedstate, schedule
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry
from django_celery_beat.tzcrontab import TzAwareCrontab

from queues.jobs import producer
from queues.jobs.info import JobHandle
from queues.jobs.task import JobTask
from queues.ops.scheduling import CRON_FIELDS, next_run, previous_run
from queues.store import recurring as recurring_store

logger = logging.getLogger("queues.ops.beat")
TICK_TOLERANCE = timedelta(seconds=2)  # beat fires a little after the nominal time


def nominal_tick(sched: Any, now: datetime) -> datetime:
    """The fire time this run belongs to: the same in every beat process."""
    if isinstance(sched, crontab):
        return previous_run(*_cron(sched), before=now + TICK_TOLERANCE)
    if isinstance(sched, schedule):
        every = sched.run_every.total_seconds()
        return datetime.fromtimestamp(
            math.floor((now.timestamp() + TICK_TOLERANCE.total_seconds()) / every) * every, UTC)
    return now.replace(microsecond=0)


def _cron(sched: Any) -> tuple[str, str]:
    """The cron expression and the timezone name of crontab ``sched``."""
    return " ".join(str(getattr(sched, f"_orig_{f}")) for f in CRON_FIELDS), str(sched.tz)


class WallClockCrontab(TzAwareCrontab):
    """django-celery-beat's crontab, due at the fire times of ``scheduling.next_run``."""

    def is_due(self, last_run_at: datetime) -> schedstate:
        """Due once the first fire time after ``last_run_at`` has come; ``next`` is the
        seconds until that one, or (when due) until the one after now."""
        expression, tz = _cron(self)
        now = self.now()
        # In seconds since the epoch: two datetimes of one zone compare by wall time.
        wait = next_run(expression, tz, after=last_run_at).timestamp() - now.timestamp()
        if wait > 0:
            return schedstate(False, wait)
        return schedstate(True, next_run(expression, tz, after=now).timestamp() - now.timestamp())


class CoordinatorEntry(ModelEntry):
    """django-celery-beat's entry, with its crontab (if any) a ``WallClockCrontab``."""

    schedule: Any  # set by ModelEntry; None for a row whose schedule is gone (it disables it)

    def __init__(self, model: PeriodicTask, app: Any = None) -> None:
        super().__init__(model, app=app)
        cron = self.schedule
        if isinstance(cron, crontab):
            self.schedule = WallClockCrontab(
                minute=cron._orig_minute, hour=cron._orig_hour,
                day_of_week=cron._orig_day_of_week, day_of_month=cron._orig_day_of_month,
                month_of_year=cron._orig_month_of_year, tz=cron.tz, app=self.app)


class CoordinatorScheduler(DatabaseScheduler):
    Entry = CoordinatorEntry

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True,
                    **kwargs: Any) -> Any:
        task = self.app.tasks.get(entry.task)
        if not isinstance(task, JobTask):
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        entry = self.reserve(entry) if advance else entry
        return enqueue_run(task, entry.model, datetime.now(UTC), entry.schedule)


def enqueue_run(task: JobTask, row: PeriodicTask, now: datetime, sched: Any) -> JobHandle | None:
    """Enqueue the run of ``row`` for the current tick (once), honouring ``max_runs``."""
    spec = json.loads(row.kwargs or "{}")
    recurring = bool(spec.get("jq_recurring"))
    data = spec.get("data") if recurring else spec
    options = dict(spec.get("options") or {}) if recurring else {}
    max_runs = spec.get("max_runs") if recurring else None
    if max_runs is not None and recurring_store.runs(row.id) >= max_runs:
        _disable(row, "max_runs reached")
        return None
    tick = nominal_tick(sched, now)
    # In UTC with ``Z``: an offset's ``+`` is outside the job id charset.
    options["job_id"] = f"recurring:{row.id}:{tick.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    submitted = producer.submit(task, [data], options)[0]
    if submitted.created and recurring:
        runs = recurring_store.record_run(row.id, submitted.job_id)
        if max_runs is not None and runs >= max_runs:
            _disable(row, f"ran {runs} of max_runs={max_runs}")
    return JobHandle(task.job_queue, submitted.job_id, created=submitted.created)


def _disable(row: PeriodicTask, why: str) -> None:
    logger.info("recurring %s disabled: %s", row.name, why)
    PeriodicTask.objects.filter(pk=row.pk).update(enabled=False)
    from django_celery_beat.models import PeriodicTasks

    PeriodicTasks.update_changed()
