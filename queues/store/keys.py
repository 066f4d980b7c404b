"""Every Redis key name the coordinator uses.

Per-queue keys carry the queue name as a Redis Cluster hash tag (``{queue}``)
so that one Lua script can touch all of a queue's keys; all keys start with
``REDIS_KEY_PREFIX``. Celery's broker lists keep kombu's own names (the queue
name, plus ``<sep><priority>`` for priorities above 0).
"""

from __future__ import annotations

from queues.conf import settings

# kombu's Redis transport keeps reserved-but-unacked messages here (its
# default key names; the coordinator reads them, never writes them).
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"

STATES = ("waiting", "delayed", "active", "completed", "failed", "cancelled", "paused")


def prefix() -> str:
    return settings.REDIS_KEY_PREFIX


def queue_base(queue: str) -> str:
    """The common start of a queue's keys; Lua scripts derive job keys from it."""
    return f"{prefix()}{{{queue}}}:"


def job(queue: str, job_id: str) -> str:
    return f"{queue_base(queue)}job:{job_id}"


def job_logs(queue: str, job_id: str) -> str:
    return f"{job(queue, job_id)}:logs"


def state_index(queue: str, state: str) -> str:
    """A sorted set of job ids in ``state`` (score: when they entered it, or due time).

    For ``waiting`` the score is when the job's current message was pushed, or
    lower for a message pushed at the consuming end (``queues.store.scripts``).
    """
    return f"{queue_base(queue)}{state}"


def meta(queue: str) -> str:
    """A hash of queue-wide flags (``paused``)."""
    return f"{queue_base(queue)}meta"


def stats(queue: str) -> str:
    """A hash of all-time counters (scheduled, completed, failed, ...)."""
    return f"{queue_base(queue)}stats"


def stats_bucket_prefix(queue: str) -> str:
    """Per-minute statistics hashes are this prefix plus the minute number."""
    return f"{queue_base(queue)}stats:m:"


def stats_minute(queue: str, minute: int) -> str:
    """The per-minute statistics hash of ``minute`` (minutes since the epoch)."""
    return f"{stats_bucket_prefix(queue)}{minute}"


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

