"""What each recurring schedule has enqueued: how many runs (for ``max_runs``) and the
job its latest run created.

The schedules themselves are django-celery-beat rows in SQL; only these two values
live in Redis, where the enqueue that they record happens.
"""

from __future__ import annotations

from typing import NamedTuple

from queues.store import backend, client, keys
from queues.store.replies import text


class RunProgress(NamedTuple):
    """A schedule's runs so far and the job its latest run created (None before one)."""

    runs: int
    last_job_id: str | None


def runs(schedule_id: int) -> int:
    """Runs enqueued so far by the schedule ``schedule_id``."""
    with backend():
        return int(client().get(keys.recurring_runs(schedule_id)) or 0)


def progress(schedule_id: int) -> RunProgress:
    """The runs so far and the latest run's job of the schedule ``schedule_id`` (one read)."""
    with backend():
        count, last = client().mget([keys.recurring_runs(schedule_id),
                                     keys.recurring_last_job(schedule_id)])
    return RunProgress(int(count or 0), text(last) if last is not None else None)


def record_run(schedule_id: int, job_id: str) -> int:
    """Count one more run, which created job ``job_id``; returns the new total."""
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.incr(keys.recurring_runs(schedule_id))
        pipe.set(keys.recurring_last_job(schedule_id), job_id)
        total, _ = pipe.execute()
    return int(total)


def forget(schedule_id: int) -> None:
    """Drop what was recorded for a deleted schedule."""
    with backend():
        client().delete(keys.recurring_runs(schedule_id), keys.recurring_last_job(schedule_id))
