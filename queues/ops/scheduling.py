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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
_DAY = timedelta(days=1)  # a zone's offset changes at most once within a day
_SECOND = timedelta(seconds=1)


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
    """The next fire time after ``after`` (default now), in the schedule's timezone.

    Fire times are wall-clock times in ``tz``, and a daylight-saving change repeats some
    (clocks going back) or skips some (going forward). The rule is Vixie cron's, as
    Debian's cron(8) states it: jobs at fixed times do not run again in the repeated time
    and run soon after the change for a skipped one; jobs that run every hour go by the
    new time. Here:

    - A schedule at named hours (``30 1 * * *``, ``*/20 1,2 * * *``) fires each
      wall-clock time once. A repeated one fires at its first occurrence (``fold=0``),
      never an hour later again. A skipped one (02:30 when 02:00 becomes 03:00) fires
      once at the first instant after the gap, 03:00 local: as soon as that wall time
      has passed, and so never after a run named later that day (shifted by the gap, to
      03:30, it would come after a 03:00 run); several skipped times make that one run.
    - A schedule that runs every hour (hour field ``*``) fires once per real hour: in
      both occurrences of a repeated hour, and not in a skipped hour, which never
      happens. (Vixie cron also counts a ``*`` minute field, and would run
      ``*/20 1 * * *`` in both occurrences of 01:xx; here that is a named hour.)

    Raises:
        JobValidationError: ``tz`` is not a known timezone.
    """
    return _nearest(expression, tz, after or dj_timezone.now(), forward=True)


def previous_run(expression: str, tz: str, *, before: datetime) -> datetime:
    """The latest fire time before ``before``, in the schedule's timezone: the fire times
    are the ones ``next_run`` chains through (its rule for daylight-saving changes).

    Raises:
        JobValidationError: ``tz`` is not a known timezone.
    """
    return _nearest(expression, tz, before, forward=False)


def _nearest(expression: str, tz: str, instant: datetime, *, forward: bool) -> datetime:
    """The first fire time after ``instant`` (``forward``), or the last one before it."""
    zone = _zone(tz)
    edge = instant.astimezone(UTC)  # two datetimes of one zone compare by wall time
    # A wall up to a change's size before ``edge``'s own can have a repeat after ``edge``
    # (and, backward, one after it a first occurrence before): start the walk at the wall
    # ``edge`` has under the offset that a change within a day would bring.
    offsets = (_offset(edge, zone), _offset(edge + (_DAY if forward else -_DAY), zone))
    wall = (edge + (min(offsets) if forward else max(offsets))).replace(tzinfo=None)
    walls = _walls(expression, zone, wall, forward=forward)
    found: list[datetime] = []
    while True:
        instants = next(walls)
        found += [t for t in instants if (t > edge if forward else t < edge)]
        # Every later wall's instants come after this wall's earliest (the earlier ones'
        # before its latest): once that one is past ``edge``, nothing nearer can follow.
        if instants and (instants[0] > edge if forward else instants[-1] < edge):
            return (min(found) if forward else max(found)).astimezone(zone)


def _offset(when: datetime, zone: zoneinfo.ZoneInfo) -> timedelta:
    return when.astimezone(zone).utcoffset() or timedelta(0)


def _walls(expression: str, zone: zoneinfo.ZoneInfo, start: datetime, *,
           forward: bool) -> Iterator[list[datetime]]:
    """For each wall-clock time that ``expression`` names after (or before) the naive
    ``start``, the UTC instants it fires at in ``zone``, earliest first."""
    # croniter walks the naive calendar, where no hour repeats or goes missing.
    cron = croniter(expression, start)
    every_hour = cron.expanded[1] == ["*"]
    step = cron.get_next if forward else cron.get_prev
    while True:
        yield _instants(step(datetime), zone, every_hour=every_hour)


def _instants(wall: datetime, zone: zoneinfo.ZoneInfo, *, every_hour: bool) -> list[datetime]:
    """The UTC instants at which the naive wall-clock time ``wall`` in ``zone`` fires
    (``next_run``'s rule), earliest first; none for a skipped one of an every-hour job."""
    first, second = (wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    if first.astimezone(zone).replace(tzinfo=None) != wall:  # skipped: clocks went forward
        return [] if every_hour else [_gap_end(wall, zone)]
    return [first, second] if every_hour and second != first else [first]


def _gap_end(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first instant (UTC) after the gap in which the naive ``wall`` never happens."""
    # Read with the offset after the change, ``wall`` is an instant before it; with the
    # offset before, one after it. Halve the interval down to the second of the change.
    before, after = sorted(wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
                           for fold in (0, 1))
    old = _offset(before, zone)
    while after - before > _SECOND:
        middle = before + _SECOND * ((after - before) // _SECOND // 2)
        before, after = (middle, after) if _offset(middle, zone) == old else (before, middle)
    return after


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
    if (job_options.get("dedup") or {}).get("mode") == "debounce":
        raise JobValidationError("a recurring job cannot debounce: its runs have no delay to "
                                 "restart (throttle is allowed)", field="dedup.mode")
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
