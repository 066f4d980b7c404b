"""Recurring jobs (seed §3.2 ``scheduleRecurringJob``) on django-celery-beat.

A recurring job is a ``PeriodicTask`` + ``CrontabSchedule`` (visible and
editable in the beat admin) whose runs ``queues.ops.beat.CoordinatorScheduler``
enqueues through the normal path, once per fire time. Cron expressions are
checked with croniter, field by field. Disabling one (``set_recurring_enabled``)
stops beat firing it; enabling it again runs the ticks from then on, never the
ones missed meanwhile.
"""

from __future__ import annotations

import json
import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from croniter import croniter
from django.utils import timezone as dj_timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from queues import options, registry, signals
from queues.exceptions import InvalidCronError, InvalidJobState, JobNotFound, JobValidationError
from queues.jobs import task_name
from queues.store import recurring as recurring_store

CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
RECURRING_PREFIX = "recurring:"


@dataclass(frozen=True)
class RepeatableJob:
    """Seed ``RepeatableJob``, plus what django-celery-beat keeps."""

    id: str
    queue: str
    name: str
    data: Any
    cron_expression: str
    timezone: str
    options: dict[str, Any]
    next_run: datetime | None
    max_runs: int | None
    runs: int
    enabled: bool
    end_date: datetime | None
    last_job_id: str | None  # the job the latest run created; None before the first run


def parse_cron(expression: str) -> dict[str, str]:
    """The five fields of a standard cron expression.

    Raises:
        InvalidCronError: naming the first invalid field.
    """
    parts = expression.split()
    if len(parts) != 5:
        raise InvalidCronError(f"expected 5 fields, got {len(parts)}: {expression!r}",
                               field="cron")
    for index, (field, value) in enumerate(zip(CRON_FIELDS, parts, strict=True)):
        probe = ["*"] * 5
        probe[index] = value
        if not croniter.is_valid(" ".join(probe)):
            raise InvalidCronError(f"{value!r} is not a valid {field}", field=f"cron.{field}")
    return dict(zip(CRON_FIELDS, parts, strict=True))


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise JobValidationError(f"unknown timezone {name!r}", field="timezone") from None


def next_run(expression: str, tz: str, *, after: datetime | None = None) -> datetime:
    """The next fire time after ``after`` (default now), in the schedule's timezone."""
    start = (after or dj_timezone.now()).astimezone(_zone(tz))
    return croniter(expression, start).get_next(datetime)


def schedule_recurring(queue: str, name: str, data: Any, cron: str, timezone: str = "UTC",
                       start_date: datetime | None = None, end_date: datetime | None = None,
                       max_runs: int | None = None, *, actor: str = "system",
                       **job_options: Any) -> RepeatableJob:
    """Run job ``name`` of ``queue`` with ``data`` on a cron schedule.

    Raises:
        QueueTypeNotFound, UnknownJobType, JobValidationError (payload, options,
        timezone, dates), InvalidCronError (naming the field).
    """
    from queues.jobs.producer import job_task

    registry.get(queue)
    task = job_task(task_name(queue, name))
    payload = task.validate_payload(data)
    options.parse(job_options, where="recurring job")
    if "job_id" in job_options or "delay_ms" in job_options or "run_at" in job_options:
        raise JobValidationError("a recurring job sets its own ids and times", field="options")
    fields = parse_cron(cron)
    _zone(timezone)
    if max_runs is not None and max_runs < 1:
        raise JobValidationError("max_runs must be at least 1", field="max_runs")
    if start_date and end_date and end_date <= start_date:
        raise JobValidationError("end_date must be after start_date", field="end_date")
    schedule, _ = CrontabSchedule.objects.get_or_create(**fields, timezone=timezone)
    row = PeriodicTask.objects.create(
        name=f"{RECURRING_PREFIX}{queue}:{name}:{uuid.uuid4().hex[:8]}", crontab=schedule,
        task=task.name, queue=queue, start_time=start_date, expires=end_date,
        kwargs=json.dumps({"jq_recurring": True, "data": payload, "options": job_options,
                           "max_runs": max_runs}),
        description=f"Recurring {name} on {queue}: {cron} ({timezone})")
    signals.announce(actor, "recurring_create", target_type="recurring", target_id=str(row.id),
                     queue=queue, name=name, cron=cron, timezone=timezone, max_runs=max_runs)
    return _describe(row, recurring_store.progress(row.id))


def _describe(row: PeriodicTask, done: recurring_store.RunProgress) -> RepeatableJob:
    """The job of ``row``, with what Redis recorded of its runs (``done``)."""
    spec = json.loads(row.kwargs or "{}")
    cron = row.crontab
    expression = " ".join(str(getattr(cron, f)) for f in CRON_FIELDS)
    after = max(dj_timezone.now(), row.start_time) if row.start_time else None
    upcoming = next_run(expression, str(cron.timezone), after=after) if row.enabled else None
    if upcoming and row.expires and upcoming > row.expires:
        upcoming = None
    queue, _, name = row.task.partition(":")
    return RepeatableJob(
        id=str(row.id), queue=queue, name=name, data=spec.get("data"),
        cron_expression=expression, timezone=str(cron.timezone),
        options=spec.get("options", {}), next_run=upcoming, max_runs=spec.get("max_runs"),
        runs=done.runs, enabled=row.enabled, end_date=row.expires,
        last_job_id=done.last_job_id)


def upcoming_runs(job: RepeatableJob, count: int = 3) -> list[datetime]:
    """The next ``count`` fire times of ``job`` in its timezone (``next_run`` chained).

    Empty when it is disabled or past its end date; none after its end date, and no
    more than the runs its ``max_runs`` leaves.
    """
    left = count if job.max_runs is None else min(count, job.max_runs - job.runs)
    times: list[datetime] = []
    when = job.next_run
    while when is not None and len(times) < left and (
            job.end_date is None or when <= job.end_date):
        times.append(when)
        when = next_run(job.cron_expression, job.timezone, after=when)
    return times


def list_recurring(queue: str | None = None) -> list[RepeatableJob]:
    """Every recurring job (optionally of one queue)."""
    rows = PeriodicTask.objects.filter(name__startswith=RECURRING_PREFIX, crontab__isnull=False)
    if queue is not None:
        rows = rows.filter(queue=queue)
    return [_describe(row, recurring_store.progress(row.id))
            for row in rows.select_related("crontab").order_by("id")]


def _row(recurring_id: str) -> PeriodicTask:
    """The beat row of a recurring job.

    Raises:
        JobNotFound: no recurring job has this id.
    """
    row = PeriodicTask.objects.select_related("crontab").filter(
        pk=int(recurring_id) if str(recurring_id).isdigit() else -1,
        name__startswith=RECURRING_PREFIX, crontab__isnull=False).first()
    if row is None:
        raise JobNotFound("recurring", str(recurring_id))
    return row


def cancel_recurring(recurring_id: str, *, actor: str = "system") -> None:
    """Remove a recurring job; runs already enqueued are not touched.

    Raises:
        JobNotFound: no recurring job has this id.
    """
    row = _row(recurring_id)
    row.delete()
    recurring_store.forget(row.pk or int(recurring_id))
    signals.announce(actor, "recurring_cancel", target_type="recurring",
                     target_id=str(recurring_id), queue=row.queue or "")


def set_recurring_enabled(recurring_id: str, enabled: bool, *, actor: str = "system"
                          ) -> RepeatableJob:
    """Enable or disable a recurring job; beat sees it at its next check (within 5 s).

    Enabling runs the ticks from now on (or from its start date, if later), never the
    ones missed while it was disabled: beat's ``last_run_at`` is set to that moment, so
    beat does not fire at once to catch up. Audited as ``enable_recurring`` /
    ``disable_recurring``; a job already in that state is left alone, unaudited.

    Raises:
        JobNotFound: no recurring job has this id.
        InvalidJobState: enabling one that has run its ``max_runs`` or is past its end date.
    """
    row = _row(recurring_id)
    done = recurring_store.progress(row.id)  # read first: if Redis fails, nothing changed
    if row.enabled == enabled:
        return _describe(row, done)
    if enabled:
        reason = finished_reason(_describe(row, done))
        if reason:
            raise InvalidJobState(f"Recurring job {row.pk} cannot be enabled: {reason}; "
                                  "schedule a new one to run it again")
        now = dj_timezone.now()
        row.last_run_at = max(now, row.start_time) if row.start_time else now
    row.enabled = enabled
    # PeriodicTask.save() clears last_run_at when disabling and tells beat (PeriodicTasks).
    row.save(update_fields=["enabled", "last_run_at", "date_changed"])
    signals.announce(actor, "enable_recurring" if enabled else "disable_recurring",
                     target_type="recurring", target_id=str(row.pk), queue=row.queue or "")
    return _describe(row, done)


def finished_reason(job: RepeatableJob) -> str:
    """Why ``job`` will never run again, or "" while it can: it has run its ``max_runs``,
    or its end date has passed."""
    if job.max_runs is not None and job.runs >= job.max_runs:
        return f"it has run {job.runs} of max_runs={job.max_runs}"
    if job.end_date is not None and job.end_date <= dj_timezone.now():
        return f"it ended on {job.end_date.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return ""
