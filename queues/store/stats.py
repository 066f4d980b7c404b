"""The statistics hashes: what the transition scripts count, and how it is read back.

Each queue has one all-time hash (``keys.stats``) and one hash per minute
(``keys.stats_minute``, kept ``STATS_BUCKET_TTL_MS``), rolled into hourly hashes by
``queues.store.history``. The scripts (``lua/finish.lua``, ``lua/fail_job.lua``, ...)
write the fields; this module is the one place Python reads their vocabulary:

- queue-wide counters: ``scheduled``, ``completed``, ``failed``, ``retries``, ``retry_attempt:<n>``,
  ``retry_error:<type>``, ``first_activity_ms``, ...
- per job type: ``<metric>|<job name>``, and the duration histogram
  ``duration|<job name>|<upper bound ms>`` with ``duration_sum|<job name>``;
- per minute: ``MINUTE_FIELDS``.
"""

from __future__ import annotations

from typing import NamedTuple

from queues.store import backend, client, keys
from queues.store.replies import text

SEP = "|"  # between a metric and its job type (and a histogram bound)
MINUTE_FIELDS = ("completed", "failed", "proc_ms", "wait_ms", "untimed")


class JobTypeField(NamedTuple):
    """One per-job-type field of the all-time hash, split: ``duration|resize|250``."""

    metric: str
    job: str
    bound: str  # the histogram bound of a ``duration`` field, else ""


def split_field(name: str) -> JobTypeField | None:
    """The parts of a per-job-type field; None for a queue-wide counter."""
    metric, sep, rest = name.partition(SEP)
    if not sep:
        return None
    if metric == "duration":
        job, _, bound = rest.rpartition(SEP)
        return JobTypeField(metric, job, bound)
    return JobTypeField(metric, rest, "")


def counters(queue: str) -> dict[str, int]:
    """The all-time hash of ``queue`` as ``field -> count``."""
    with backend():
        raw = client().hgetall(keys.stats(queue))
    return {text(k): int(v) for k, v in raw.items()}


class MinuteRows(NamedTuple):
    first_activity_ms: int | None
    rows: list[tuple[int, ...]]  # MINUTE_FIELDS of each minute, oldest first (0 when absent)


def minutes(queue: str, first_minute: int, count: int) -> MinuteRows:
    """``count`` per-minute hashes of ``queue`` from ``first_minute``, in one round trip."""
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.hget(keys.stats(queue), "first_activity_ms")
        for minute in range(first_minute, first_minute + count):
            pipe.hmget(keys.stats_minute(queue, minute), *MINUTE_FIELDS)
        first_activity, *rows = pipe.execute()
    return MinuteRows(None if first_activity is None else int(first_activity),
                      [tuple(int(v or 0) for v in row) for row in rows])
