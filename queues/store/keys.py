"""Every Redis key name the coordinator uses.

Per-queue keys share a key base, ``<REDIS_KEY_PREFIX>{<queue>}:``, from which the
Lua scripts derive job keys. The braces are Redis Cluster's hash-tag syntax, but the
coordinator does not run on Redis Cluster: its scripts name keys they were not passed
(job keys, a flow's parent in another queue, the worker hash, the known-queues set)
and the broker lists keep kombu's own names (the queue name, plus
``<sep><priority>`` for priorities above 0), and kombu's Redis transport has no
Cluster support. A queue, its records and its broker lists live on one Redis.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from queues.conf import settings

# kombu's Redis transport keeps reserved-but-unacked messages here (its
# default key names; the coordinator reads them, never writes them).
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"

STATES = ("waiting-children", "waiting", "delayed", "limited", "active", "completed", "failed",
          "cancelled", "paused")
_MINUTE = "stats:m:"  # per-minute stats hashes: <queue base>stats:m:<minute number>


def prefix() -> str:
    return settings.REDIS_KEY_PREFIX


def queue_base(queue: str) -> str:
    """The common start of a queue's keys; Lua scripts derive job keys from it."""
    return of(queue).base


class QueueKeys(NamedTuple):
    """A queue's fixed keys, built once per (prefix, queue): a job's claim and finish
    name nine of them, so the hot path reads them here instead of formatting each."""

    base: str
    waiting: str
    delayed: str
    active: str
    completed: str
    failed: str
    cancelled: str
    paused: str
    meta: str
    stats: str

    def in_state(self, state: str) -> str:
        """The state index of ``state`` (one of ``STATES``)."""
        return f"{self.base}{state}"

    def job(self, job_id: str) -> str:
        return f"{self.base}job:{job_id}"

    def job_logs(self, job_id: str) -> str:
        return f"{self.base}job:{job_id}:logs"

    def stats_minute(self, minute: int) -> str:
        return f"{self.base}{_MINUTE}{minute}"


def of(queue: str) -> QueueKeys:
    """The fixed keys of ``queue`` under the current ``REDIS_KEY_PREFIX``."""
    return _queue_keys(prefix(), queue)


@functools.lru_cache(maxsize=1024)  # bounded: a queue name may come from a request
def _queue_keys(key_prefix: str, queue: str) -> QueueKeys:
    base = f"{key_prefix}{{{queue}}}:"
    return QueueKeys(base=base, waiting=f"{base}waiting", delayed=f"{base}delayed",
                     active=f"{base}active", completed=f"{base}completed",
                     failed=f"{base}failed", cancelled=f"{base}cancelled",
                     paused=f"{base}paused", meta=f"{base}meta", stats=f"{base}stats")


def job(queue: str, job_id: str) -> str:
    return of(queue).job(job_id)


def job_logs(queue: str, job_id: str) -> str:
    return of(queue).job_logs(job_id)


def state_index(queue: str, state: str) -> str:
    """A sorted set of job ids in ``state`` (score: when they entered it, or due time).

    For ``waiting`` the score is when the job's current message was pushed, or
    lower for a message pushed at the consuming end (``queues.store.scripts``).
    """
    return of(queue).in_state(state)


def meta(queue: str) -> str:
    """A hash of queue-wide flags (``paused``) and limits (``queues.store.gate``)."""
    return of(queue).meta


def gate(queue: str, name: str) -> str:
    """One of the keys of a queue's flow control (``queues/store/lua/gate.lua`` lists them)."""
    return f"{queue_base(queue)}gate:{name}"


def stats(queue: str) -> str:
    """A hash of all-time counters (scheduled, completed, failed, ...)."""
    return of(queue).stats


def dedup(queue: str, key: str) -> str:
    """The id of the job that set de-duplication ``key`` (a string with the key's ttl)."""
    return f"{queue_base(queue)}dedup:{key}"


def stats_bucket_prefix(queue: str) -> str:
    """Per-minute statistics hashes are this prefix plus the minute number."""
    return f"{of(queue).base}{_MINUTE}"


def stats_minute(queue: str, minute: int) -> str:
    """The per-minute statistics hash of ``minute`` (minutes since the epoch)."""
    return of(queue).stats_minute(minute)


def stats_hour(queue: str, hour: int) -> str:
    """An hourly statistics hash (``hour``: hours since the epoch), rolled up from minutes."""
    return f"{queue_base(queue)}stats:h:{hour}"


def stats_rolled(queue: str) -> str:
    """The last minute number already rolled into an hourly hash."""
    return f"{stats_bucket_prefix(queue)}rolled"


def health_state(queue: str) -> str:
    """A hash of the queue's last health check (status, issues, since)."""
    return f"{queue_base(queue)}health:state"


def health_history(queue: str) -> str:
    """A list of the queue's health transitions (JSON), newest first, bounded."""
    return f"{queue_base(queue)}health:history"


def queue_workers(queue: str) -> str:
    """A sorted set of worker hostnames serving the queue (score: last heartbeat, ms)."""
    return f"{queue_base(queue)}workers"


def workers() -> str:
    """A sorted set of every worker hostname (score: last heartbeat, ms)."""
    return f"{prefix()}workers"


def worker_targets() -> str:
    """A hash of hostname -> pool size set by scaling (a restarted worker returns to it)."""
    return f"{prefix()}worker-targets"


def worker(hostname: str) -> str:
    """A hash describing one running ``celery worker``."""
    return f"{prefix()}worker:{hostname}"


def pending_dead_letters() -> str:
    """A list of terminal failures waiting for the SQL database to come back."""
    return f"{prefix()}deadletter:pending"


def pending_flush_lock() -> str:
    return f"{prefix()}deadletter:flush-lock"


def message_quarantine(queue: str) -> str:
    """A list of items fetched from the queue's broker list that were not valid messages."""
    return f"{queue_base(queue)}quarantine:messages"


def dead_letter_quarantine(queue: str) -> str:
    """A list of the queue's terminal failures that the SQL database refused as rows."""
    return f"{queue_base(queue)}deadletter:quarantine"


def failure_alert(queue: str, job_name: str) -> str:
    """Set while a failure-pattern alert for this job type is fresh (one per window)."""
    return f"{queue_base(queue)}alert:{job_name}"


def client_rate(client_id: str, minute: int) -> str:
    """Jobs a client enqueued in one minute (for MAX_JOBS_PER_MINUTE)."""
    return f"{prefix()}rate:{client_id}:{minute}"


def known_queues() -> str:
    """A set of every queue name a job was ever enqueued to (for sweeps)."""
    return f"{prefix()}queues"


def recurring_runs(schedule_id: int) -> str:
    """How many runs the recurring schedule (a django-celery-beat row id) has enqueued."""
    return f"{prefix()}recurring:{schedule_id}:runs"


def recurring_last_job(schedule_id: int) -> str:
    """The id of the job the recurring schedule's latest run created."""
    return f"{prefix()}recurring:{schedule_id}:last-job"
