"""Recurring fire times across daylight-saving changes (``next_run``, ``upcoming_runs``, the
beat tick), as exact lists of UTC instants, for Europe/Berlin and America/New_York in 2026.

The changes: Berlin goes forward 02:00 -> 03:00 on 29 March and back 03:00 -> 02:00 on 25
October (02:xx happens twice); New York goes forward 02:00 -> 03:00 on 8 March and back
02:00 -> 01:00 on 1 November (01:xx happens twice). The rule under test: a schedule at named
hours fires each wall-clock time once (a repeated one at its first occurrence, a skipped one
at the first instant after the gap, 03:00); a schedule that runs every hour fires once per
real hour. No I/O: the functions are called with explicit instants.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.tzcrontab import TzAwareCrontab

from queues.ops.beat import TICK_TOLERANCE, nominal_tick
from queues.ops.scheduling import RepeatableJob, next_run, upcoming_runs

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
BERLIN_BACK, BERLIN_FORWARD = date(2026, 10, 25), date(2026, 3, 29)
NEW_YORK_BACK, NEW_YORK_FORWARD = date(2026, 11, 1), date(2026, 3, 8)
CHANGES = [(BERLIN, BERLIN_BACK), (BERLIN, BERLIN_FORWARD),
           (NEW_YORK, NEW_YORK_BACK), (NEW_YORK, NEW_YORK_FORWARD)]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def midnight(day: date, tz: str) -> datetime:
    """Local midnight of ``day`` (never inside a change in these zones), in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def fires(cron: str, tz: str, change: date) -> list[datetime]:
    """Every fire time of the three local days around ``change`` (the day before, the day,
    the day after), walked by ``upcoming_runs``, in the schedule's timezone."""
    start = midnight(change - timedelta(days=1), tz)
    end = midnight(change + timedelta(days=2), tz) - timedelta(microseconds=1)
    job = RepeatableJob(
        id="1", queue="photo-processing", name="t-echo", data={}, cron_expression=cron,
        timezone=tz, options={}, next_run=next_run(cron, tz, after=start - timedelta(seconds=1)),
        max_runs=None, runs=0, enabled=True, end_date=end, last_job_id=None)
    times = upcoming_runs(job, count=10_000)
    assert all(str(t.tzinfo) == tz for t in times), "fire times are in the schedule's zone"
    return times


def in_utc(times: list[datetime]) -> list[datetime]:
    return [t.astimezone(UTC) for t in times]


def per_local_day(times: list[datetime]) -> list[int]:
    return list(Counter(t.date() for t in times).values())


# --- The repeated wall time: once, at its first occurrence ----------------------------------

@pytest.mark.parametrize(("tz", "cron", "change", "expected"), [
    (NEW_YORK, "30 1 * * *", NEW_YORK_BACK,  # 01:30 EDT, 01:30 EDT (not 01:30 EST), 01:30 EST
     ["2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"]),
    (BERLIN, "30 2 * * *", BERLIN_BACK,  # 02:30 CEST, 02:30 CEST (not 02:30 CET), 02:30 CET
     ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"]),
])
def test_a_repeated_wall_time_fires_once_at_its_first_occurrence(
        tz: str, cron: str, change: date, expected: list[str]) -> None:
    times = fires(cron, tz, change)
    assert in_utc(times) == [utc(t) for t in expected]
    assert [(t.hour, t.minute, t.fold) for t in times] == [(times[0].hour, 30, 0)] * 3


# --- The skipped wall time: once, at the first instant after the gap (03:00) ----------------

@pytest.mark.parametrize(("tz", "change", "expected"), [
    (NEW_YORK, NEW_YORK_FORWARD,  # 02:30 EST, 03:00 EDT, 02:30 EDT
     ["2026-03-07T07:30", "2026-03-08T07:00", "2026-03-09T06:30"]),
    (BERLIN, BERLIN_FORWARD,  # 02:30 CET, 03:00 CEST, 02:30 CEST
     ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"]),
])
def test_a_skipped_wall_time_fires_once_when_the_gap_ends(
        tz: str, change: date, expected: list[str]) -> None:
    times = fires("30 2 * * *", tz, change)
    assert in_utc(times) == [utc(t) for t in expected]
    assert [(t.hour, t.minute) for t in times] == [(2, 30), (3, 0), (2, 30)]


def test_several_skipped_times_of_one_schedule_make_one_run_after_the_gap() -> None:
    times = fires("0,30 2 * * *", NEW_YORK, NEW_YORK_FORWARD)
    assert in_utc(times) == [utc("2026-03-07T07:00"), utc("2026-03-07T07:30"),
                             utc("2026-03-08T07:00"),
                             utc("2026-03-09T06:00"), utc("2026-03-09T06:30")]
    merged = fires("0 2,3 * * *", BERLIN, BERLIN_FORWARD)  # 02:00 is skipped, 03:00 is real
    assert [(t.day, t.hour) for t in merged] == [(28, 2), (28, 3), (29, 3), (30, 2), (30, 3)]


def test_a_schedule_at_a_named_hour_runs_through_the_repeated_hour_once() -> None:
    times = fires("*/20 1 * * *", NEW_YORK, NEW_YORK_BACK)
    assert per_local_day(times) == [3, 3, 3]
    assert [t.fold for t in times] == [0] * 9


# --- A schedule that runs every hour: once per real hour ------------------------------------

@pytest.mark.parametrize(("tz", "change"), CHANGES)
def test_an_hourly_job_fires_once_per_real_hour(tz: str, change: date) -> None:
    times = fires("0 * * * *", tz, change)
    start = midnight(change - timedelta(days=1), tz)
    hours = int((midnight(change + timedelta(days=2), tz) - start) / timedelta(hours=1))
    assert in_utc(times) == [start + timedelta(hours=n) for n in range(hours)]
    back = change in (BERLIN_BACK, NEW_YORK_BACK)
    assert per_local_day(times) == [24, 25 if back else 23, 24]


@pytest.mark.parametrize(("tz", "change"), CHANGES)
def test_every_30_minutes_stays_30_real_minutes_apart(tz: str, change: date) -> None:
    times = in_utc(fires("*/30 * * * *", tz, change))
    assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(minutes=30)}
    back = change in (BERLIN_BACK, NEW_YORK_BACK)
    assert len(times) == 2 * (24 + (25 if back else 23) + 24)


def test_the_repeated_hour_of_an_hourly_job_is_both_occurrences() -> None:
    times = fires("0 * * * *", NEW_YORK, NEW_YORK_BACK)
    repeated = [(t.isoformat(), t.fold) for t in times if t.date() == NEW_YORK_BACK and t.hour == 1]
    assert repeated == [("2026-11-01T01:00:00-04:00", 0), ("2026-11-01T01:00:00-05:00", 1)]


# --- From any instant: the next run, and the tick beat files a run under --------------------

@pytest.mark.parametrize(("tz", "change"), CHANGES)
@pytest.mark.parametrize("cron", ["30 1 * * *", "30 2 * * *", "0 * * * *", "*/15 * * * *",
                                  "*/20 1,2 * * *"])
def test_next_run_and_the_beat_tick_from_any_instant_agree_with_the_walk(
        tz: str, change: date, cron: str) -> None:
    walked = in_utc(fires(cron, tz, change))
    sched = TzAwareCrontab(*cron.split()[:2], day_of_week="*", day_of_month="*",
                           month_of_year="*", tz=ZoneInfo(tz))
    at = midnight(change, tz)
    while at < midnight(change + timedelta(days=1), tz):
        # In UTC: a datetime in a repeated hour never equals one of another zone (PEP 495).
        assert next_run(cron, tz, after=at).astimezone(UTC) == min(t for t in walked if t > at)
        tick = nominal_tick(sched, at).astimezone(UTC)
        assert tick == max(t for t in walked if t < at + TICK_TOLERANCE), at
        at += timedelta(minutes=7, seconds=30)
