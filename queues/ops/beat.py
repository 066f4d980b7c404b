"""django-celery-beat's scheduler, with coordinator jobs enqueued once per fire time.

Run beat with it (the default in settings): ``celery -A coordinator_project beat``.
For an entry whose task is a ``@job``, the run is enqueued with
``job_id="recurring:<entry id>:<nominal tick>"``: a second beat, or a retry,
firing the same tick finds the job already there (de-duplication), so a tick
runs once. Each run of a recurring job (``schedule_recurring``) is counted in
Redis, with the id of the job it created, by the enqueue that created it
(django-celery-beat's ``total_run_count`` is per beat process and written back
only every few minutes); ``max_runs`` reads that count.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import crontab, schedule
from croniter import croniter
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from queues.jobs import producer
from queues.jobs.info import JobHandle
from queues.jobs.task import JobTask
from queues.ops.scheduling import CRON_FIELDS
from queues.store import recurring as recurring_store

logger = logging.getLogger("queues.ops.beat")
TICK_TOLERANCE = timedelta(seconds=2)  # beat fires a little after the nominal time


def nominal_tick(sched: Any, now: datetime) -> datetime:
    """The fire time this run belongs to: the same in every beat process."""
    if isinstance(sched, crontab):
        expression = " ".join(str(getattr(sched, f"_orig_{f}")) for f in CRON_FIELDS)
        local = (now + TICK_TOLERANCE).astimezone(getattr(sched, "tz", None) or UTC)
        return croniter(expression, local).get_prev(datetime)
    if isinstance(sched, schedule):
        every = sched.run_every.total_seconds()
        return datetime.fromtimestamp(
            math.floor((now.timestamp() + TICK_TOLERANCE.total_seconds()) / every) * every, UTC)
    return now.replace(microsecond=0)


class CoordinatorScheduler(DatabaseScheduler):
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
