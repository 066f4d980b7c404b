"""The coordinator's own jobs on the ``maintenance`` queue (scheduled by beat).

- ``clean-queue``: trim a queue's finished records by its cleanup policy.
- ``consistency-check``: every state index entry must point at a record in
  that state, and every record must sit in its state's index; repairs both.
- ``cleanup-orphans``: log lists without a job, presence entries of workers
  whose record expired, pool targets of workers long gone.
- ``metrics-aggregation``: roll per-minute stats buckets into hourly ones
  (kept 7 days) for longer windows than the 2-hour minute buckets allow;
  ``queues.ops.health_history`` reads them (``GET /queues/<name>/health/history``).
- ``health-check``: evaluate every queue's health and record the changes of
  status (``queues.ops.health_history``).

``metrics-aggregation`` and ``health-check`` are scheduled by
``deadletter.retention.ensure_schedules`` from ``ENABLE_METRICS_COLLECTION`` /
``METRICS_COLLECTION_INTERVAL`` and ``ENABLE_HEALTH_CHECKS`` / ``HEALTH_CHECK_INTERVAL``.
"""

from __future__ import annotations

from typing import Any

from queues import store
from queues.conf import settings
from queues.jobs import job
from queues.jobs.context import JobContext
from queues.ops import health_history, manager
from queues.store import history as history_store
from queues.store import upkeep
from queues.store import workers as worker_store


def _queues(data: dict[str, Any]) -> list[str]:
    return [data["queue"]] if data.get("queue") else manager.list_queues()


@job("maintenance", "clean-queue", attempts=1)
def clean_queue(data: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Trim one queue's finished job records by its cleanup policy."""
    removed = manager.clean_queue(data["queue"])
    ctx.log(f"removed {removed['completed']} completed and {removed['failed']} failed records")
    return removed


def check_consistency(queue: str) -> dict[str, int]:
    """Repair index entries that disagree with their record; count what was found."""
    return upkeep.repair_indexes(queue)


@job("maintenance", "consistency-check", attempts=1, remove_on_complete=20)
def consistency_check(data: dict[str, Any], ctx: JobContext) -> dict[str, dict[str, int]]:
    report = {queue: check_consistency(queue) for queue in _queues(data)}
    ctx.log(f"consistency: {report}")
    return report


def cleanup_orphans() -> dict[str, int]:
    """Remove the coordinator's own leftovers; returns counts per kind."""
    queues = manager.list_queues()
    stale_before = store.now_ms() - 2 * settings.WORKER_STALE_AFTER
    workers, targets = worker_store.forget_stale_workers(queues, stale_before=stale_before)
    return {"logs": upkeep.remove_orphan_logs(queues), "workers": workers, "targets": targets}


@job("maintenance", "cleanup-orphans", attempts=1, remove_on_complete=20)
def cleanup_orphans_job(data: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    counts = cleanup_orphans()
    ctx.log(f"orphans removed: {counts}")
    return counts


def aggregate_metrics(queue: str) -> int:
    """Add the minute buckets of finished hours into hourly hashes; returns minutes rolled.

    The hourly hashes (kept a week) feed ``queues.ops.health_history``.

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    return history_store.roll_up_hours(queue, now=store.now_ms())


@job("maintenance", "metrics-aggregation", attempts=1, remove_on_complete=20)
def metrics_aggregation(data: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Roll up every queue's finished hours (gated by ENABLE_METRICS_COLLECTION)."""
    if not settings.ENABLE_METRICS_COLLECTION:
        return {}
    return {queue: aggregate_metrics(queue) for queue in _queues(data)}


@job("maintenance", "health-check", attempts=1, remove_on_complete=20)
def health_check(data: dict[str, Any], ctx: JobContext) -> dict[str, str]:
    """Check every queue's health and record transitions (gated by ENABLE_HEALTH_CHECKS).

    Returns the queues whose status changed, with their new status.
    """
    if not settings.ENABLE_HEALTH_CHECKS:
        return {}
    changed: dict[str, str] = {}
    for queue in _queues(data):
        transition = health_history.check_queue(queue)
        if transition is not None:
            changed[queue] = transition.current
    return changed
