"""How many times each recurring schedule has enqueued a run (for ``max_runs``).

The schedules themselves are django-celery-beat rows in SQL; only this counter
lives in Redis, where the enqueue that it counts happens.
"""

from __future__ import annotations

from queues.store import backend, client, keys


def runs(schedule_id: int) -> int:
    """Runs enqueued so far by the schedule ``schedule_id``."""
    with backend():
        return int(client().get(keys.recurring_runs(schedule_id)) or 0)


def count_run(schedule_id: int) -> int:
    """Count one more run; returns the new total."""
    with backend():
        return int(client().incr(keys.recurring_runs(schedule_id)))


def forget(schedule_id: int) -> None:
    """Drop the counter of a deleted schedule."""
    with backend():
        client().delete(keys.recurring_runs(schedule_id))
