"""Queue management: the state of a queue and the list of queues.

Pause, resume, create, destroy and cleanup join this module as they land.
"""

from __future__ import annotations

from dataclasses import dataclass

from queues import keys, registry, stats, store
from queues.conf import settings

# A worker counts as live while its last heartbeat is this many intervals old at most.
LIVE_HEARTBEATS = 3


@dataclass(frozen=True)
class QueueStatus:
    """Seed §3.1 ``QueueStatus``; rates are over the last 5 minutes."""

    name: str
    is_paused: bool
    job_counts: dict[str, int]
    workers: int
    processing_rate: float  # jobs per minute
    average_processing_time: float  # milliseconds


def queue_status(name: str) -> QueueStatus:
    """Counts per state, paused flag, live workers and recent rates of one queue.

    Raises:
        QueueTypeNotFound: ``name`` is not registered.
        BackendUnavailable: Redis is unreachable.
    """
    registry.get(name)
    live_since = store.now_ms() - LIVE_HEARTBEATS * settings.WORKER_HEARTBEAT_INTERVAL
    with store.backend():
        pipe = store.client().pipeline(transaction=False)
        for state in keys.STATES:
            pipe.zcard(keys.state_index(name, state))
        pipe.hget(keys.meta(name), "paused")
        pipe.zcount(keys.queue_workers(name), live_since, "+inf")
        *state_counts, paused, workers = pipe.execute()
    recent = stats.window(name)
    return QueueStatus(
        name=name,
        is_paused=paused == b"1",
        job_counts=dict(zip(keys.STATES, state_counts, strict=True)),
        workers=workers,
        processing_rate=round(recent.processing_rate, 3),
        average_processing_time=round(recent.average_processing_time, 3),
    )


def list_queues() -> list[str]:
    """Names of every registered queue type."""
    return sorted(registry.all_specs())


def totals(name: str) -> dict[str, int]:
    """All-time counters of a queue: scheduled, completed, failed."""
    with store.backend():
        raw = store.client().hgetall(keys.stats(name))
    counters = {k.decode(): int(v) for k, v in raw.items()}
    return {key: counters.get(key, 0) for key in ("scheduled", "completed", "failed")}


def clean_queue(name: str, *, limit: int = 1000) -> dict[str, int]:
    """Trim finished records past the queue type's cleanup ages (seed §3.1 cleanup).

    Deletes in batches of ``limit`` until none is left; returns counts per state.

    Raises:
        QueueTypeNotFound: ``name`` is not registered.
    """
    spec = registry.get(name)
    removed = {"completed": 0, "failed": 0}
    if not spec.cleanup_enabled:
        return removed
    ages = {"completed": spec.completed_job_age_ms, "failed": spec.failed_job_age_ms}
    for state, age in ages.items():
        while (n := store.clean(name, state, older_than_ms=age, limit=limit)) > 0:
            removed[state] += n
    return removed
