"""Recurring jobs through the real beat scheduler across daylight-saving changes.

A ``CoordinatorScheduler`` (what ``celery beat`` runs) reads the schedule from the database
and its ``tick()`` decides what is due and enqueues it into Redis, exactly as in beat; only
the clock is mocked (time-machine), and the test moves it five minutes at a time across each
change, ticking at every step until nothing is due. The jobs counted are the ones in Redis.
The rule (``queues.ops.scheduling.next_run``): a schedule at named hours runs each
wall-clock time once (a repeated one at its first occurrence, a skipped one at 03:00, the
first instant after the gap); a schedule that runs every hour runs once per real hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
import time_machine
from django_celery_beat.models import PeriodicTask

from coordinator_project.celery import app as celery_app
from queues.ops.beat import CoordinatorScheduler
from queues.ops.scheduling import RepeatableJob, list_recurring, schedule_recurring
from queues.store import keys
from tests.conftest import texts

# Beat's scheduler closes the database connection between its reads, so each test commits
# for real (as beat does) rather than inside one rolled-back transaction.
pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("builtin_queue_types")]
Q = "photo-processing"
# Beat wakes at least every 5 s. A fire time passed between two steps runs at the second,
# filed under its own tick (the job id), so every fire time is still counted once.
STEP = timedelta(minutes=5)
DAY = timedelta(days=1)
MAX_SENDS_PER_STEP = 10  # tick() sends one due entry per call and returns 0 after it


def local(tz: str, day: date, hour: int = 0) -> datetime:
    """Wall-clock time ``hour``:00 of ``day`` in ``tz`` (one no change skips or repeats),
    in UTC."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """The frozen clock the test moves (``shift``); nothing else is mocked."""
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def schedule(clock: time_machine.Traveller, at: datetime, cron: str, tz: str) -> RepeatableJob:
    """A recurring job created at ``at``, the only enabled beat entry (the maintenance
    entries would only add runs of other jobs)."""
    clock.move_to(at)
    job = schedule_recurring(Q, "t-echo", {"value": 1}, cron, timezone=tz)
    PeriodicTask.objects.exclude(pk=job.id).update(enabled=False)
    return job


def beat_until(beat: CoordinatorScheduler, clock: time_machine.Traveller, end: datetime) -> None:
    """Move the clock to ``end`` by ``STEP``; at each step, tick until nothing is due."""
    while datetime.now(UTC) < end:
        clock.shift(STEP)
        for _ in range(MAX_SENDS_PER_STEP):
            if beat.tick() > 0:  # seconds to the next due entry: nothing is due now
                break
        else:
            raise AssertionError(f"beat kept sending at {datetime.now(UTC)}")


def runs(r: redis.Redis, job: RepeatableJob) -> list[datetime]:
    """The fire times of the jobs beat enqueued for ``job`` (read from their ids in Redis)."""
    prefix = f"recurring:{job.id}:"
    ids = [i for i in texts(r.zrange(keys.state_index(Q, "waiting"), 0, -1))
           if i.startswith(prefix)]
    [listed] = list_recurring(Q)
    assert listed.runs == len(ids), "each run counted once, by the enqueue that created it"
    return sorted(datetime.strptime(i.removeprefix(prefix), "%Y%m%dT%H%M%S%z") for i in ids)


def run_beat(clock: time_machine.Traveller, cron: str, tz: str,
             start: datetime, end: datetime) -> RepeatableJob:
    """One beat, from ``start`` (when the job is created) to ``end``."""
    job = schedule(clock, start, cron, tz)
    beat_until(CoordinatorScheduler(app=celery_app), clock, end)
    return job


@pytest.mark.parametrize(("tz", "cron", "day", "expected"), [
    # New York repeats 01:00-02:00: 01:30 EDT runs, 01:30 EST does not; then 01:30 EST.
    ("America/New_York", "30 1 * * *", date(2026, 11, 1),
     ["2026-11-01T05:30", "2026-11-02T06:30"]),
    # Berlin repeats 02:00-03:00: 02:30 CEST runs, 02:30 CET does not; then 02:30 CET.
    ("Europe/Berlin", "30 2 * * *", date(2026, 10, 25),
     ["2026-10-25T00:30", "2026-10-26T01:30"]),
])
def test_a_repeated_wall_time_runs_once(r: redis.Redis, clock: time_machine.Traveller,
                                        tz: str, cron: str, day: date,
                                        expected: list[str]) -> None:
    job = run_beat(clock, cron, tz, local(tz, day - DAY, 12), local(tz, day + DAY, 12))
    assert runs(r, job) == [utc(t) for t in expected]


@pytest.mark.parametrize(("tz", "day", "expected"), [
    # 02:30 does not exist on the day: it runs at 03:00 local (the gap's end), once.
    ("America/New_York", date(2026, 3, 8), ["2026-03-08T07:00", "2026-03-09T06:30"]),
    ("Europe/Berlin", date(2026, 3, 29), ["2026-03-29T01:00", "2026-03-30T00:30"]),
])
def test_a_skipped_wall_time_runs_once_at_the_end_of_the_gap(
        r: redis.Redis, clock: time_machine.Traveller, tz: str, day: date,
        expected: list[str]) -> None:
    job = run_beat(clock, "30 2 * * *", tz, local(tz, day - DAY, 12), local(tz, day + DAY, 12))
    assert runs(r, job) == [utc(t) for t in expected]
    assert [t.astimezone(ZoneInfo(tz)).strftime("%H:%M") for t in runs(r, job)] == [
        "03:00", "02:30"]


@pytest.mark.parametrize(("tz", "day", "hours"), [
    ("America/New_York", date(2026, 11, 1), 25), ("America/New_York", date(2026, 3, 8), 23),
    ("Europe/Berlin", date(2026, 10, 25), 25), ("Europe/Berlin", date(2026, 3, 29), 23),
])
def test_an_hourly_job_runs_once_per_real_hour(r: redis.Redis, clock: time_machine.Traveller,
                                               tz: str, day: date, hours: int) -> None:
    midnight, early = local(tz, day), timedelta(seconds=30)
    job = run_beat(clock, "0 * * * *", tz, midnight - early, local(tz, day + DAY) - early)
    assert runs(r, job) == [midnight + timedelta(hours=n) for n in range(hours)]


def test_a_beat_restarted_in_the_repeated_hour_does_not_run_its_first_occurrence_again(
        r: redis.Redis, clock: time_machine.Traveller) -> None:
    tz, day = "America/New_York", date(2026, 11, 1)
    job = schedule(clock, local(tz, day), "30 1 * * *", tz)
    beat_until(CoordinatorScheduler(app=celery_app), clock, utc("2026-11-01T05:45"))
    # Killed at 01:45 EDT before it wrote its last run to the database (beat syncs every
    # 3 minutes): the next beat, started at 01:45 EST, finds the 01:30 run due again.
    PeriodicTask.objects.filter(pk=job.id).update(last_run_at=local(tz, day))
    clock.move_to(utc("2026-11-01T06:45"))
    beat_until(CoordinatorScheduler(app=celery_app), clock, utc("2026-11-01T09:00"))
    assert runs(r, job) == [utc("2026-11-01T05:30")]
