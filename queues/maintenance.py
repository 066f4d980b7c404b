"""The coordinator's own jobs on the ``maintenance`` queue (scheduled by beat).

- ``clean-queue``: trim a queue's finished records by its cleanup policy.
- ``consistency-check``: every state index entry must point at a record in
  that state, and every record must sit in its state's index; repairs both.
- ``cleanup-orphans``: log lists without a job, presence entries of workers
  whose record expired, pool targets of workers long gone.
- ``metrics-aggregation``: roll per-minute stats buckets into hourly ones
  (kept 7 days) for longer windows than the 2-hour minute buckets allow;
  ``queues.health_history`` reads them (``GET /queues/<name>/health/history``).
- ``health-check``: evaluate every queue's health and record the changes of
  status (``queues.health_history``).

``metrics-aggregation`` and ``health-check`` are scheduled by
``deadletter.retention.ensure_schedules`` from ``ENABLE_METRICS_COLLECTION`` /
``METRICS_COLLECTION_INTERVAL`` and ``ENABLE_HEALTH_CHECKS`` / ``HEALTH_CHECK_INTERVAL``.
"""

from __future__ import annotations

from typing import Any

import redis

from queues import health_history, keys, manager, store
from queues.conf import settings
from queues.context import JobContext
from queues.jobs import job
from queues.store import history as history_store

_INDEXED = ("waiting", "delayed", "active", "completed", "failed", "cancelled", "paused")


def _queues(data: dict[str, Any]) -> list[str]:
    return [data["queue"]] if data.get("queue") else manager.list_queues()


@job("maintenance", "clean-queue", attempts=1)
def clean_queue(data: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Trim one queue's finished job records by its cleanup policy."""
    removed = manager.clean_queue(data["queue"])
    ctx.log(f"removed {removed['completed']} completed and {removed['failed']} failed records")
    return removed


def _fix_entry(cli: redis.Redis, queue: str, state: str, job_id: str) -> str:
    """Check one index entry atomically (WATCH); returns ok, orphan or moved."""
    job_key, index = keys.job(queue, job_id), keys.state_index(queue, state)
    with cli.pipeline() as pipe:
        try:
            pipe.watch(job_key, index)
            actual = pipe.hget(job_key, "state")
            if actual is not None and store.text(actual) == state:
                return "ok"
            pipe.multi()
            pipe.zrem(index, job_id)
            if actual is not None and store.text(actual) in _INDEXED:
                pipe.zadd(keys.state_index(queue, store.text(actual)), {job_id: store.now_ms()},
                          nx=True)
            pipe.execute()
        except redis.WatchError:
            return "ok"  # it moved on while we looked: the transition scripts own it
    return "orphan" if actual is None else "moved"


def check_consistency(queue: str) -> dict[str, int]:
    """Repair index entries that disagree with their record; count what was found."""
    cli = store.client()
    found = {"checked": 0, "orphan": 0, "moved": 0, "unindexed": 0}
    with store.backend():
        for state in _INDEXED:
            for raw, _score in cli.zscan_iter(keys.state_index(queue, state), count=500):
                outcome = _fix_entry(cli, queue, state, raw.decode())
                found["checked"] += 1
                if outcome != "ok":
                    found[outcome] += 1
        found["unindexed"] = _index_strays(cli, queue)
    return found


def _index_strays(cli: redis.Redis, queue: str) -> int:
    """Records missing from their state's index are put back into it."""
    prefix, fixed = f"{keys.queue_base(queue)}job:", 0
    for raw in cli.scan_iter(match=f"{prefix}*", count=1000):
        key = raw.decode()
        if key.endswith(":logs"):
            continue
        job_id = key[len(prefix):]
        state = cli.hget(key, "state")
        if state and store.text(state) in _INDEXED and cli.zscore(
                keys.state_index(queue, store.text(state)), job_id) is None:
            # ZADD without INCR answers how many it added, never a score or nil.
            fixed += int(cli.zadd(keys.state_index(queue, store.text(state)),
                                  {job_id: store.now_ms()}, nx=True) or 0)
    return fixed


@job("maintenance", "consistency-check", attempts=1, remove_on_complete=20)
def consistency_check(data: dict[str, Any], ctx: JobContext) -> dict[str, dict[str, int]]:
    report = {queue: check_consistency(queue) for queue in _queues(data)}
    ctx.log(f"consistency: {report}")
    return report


def cleanup_orphans() -> dict[str, int]:
    """Remove the coordinator's own leftovers; returns counts per kind."""
    cli = store.client()
    counts = {"logs": 0, "workers": 0, "targets": 0}
    stale_before = store.now_ms() - 2 * settings.WORKER_STALE_AFTER
    with store.backend():
        for queue in manager.list_queues():
            for raw in cli.scan_iter(match=f"{keys.queue_base(queue)}job:*:logs", count=1000):
                if not cli.exists(raw.decode()[: -len(":logs")]):
                    counts["logs"] += cli.delete(raw)
            counts["workers"] += cli.zremrangebyscore(keys.queue_workers(queue), "-inf",
                                                      stale_before)
        counts["workers"] += cli.zremrangebyscore(keys.workers(), "-inf", stale_before)
        for host in cli.hkeys(keys.worker_targets()):
            if not cli.exists(keys.worker(store.text(host))):
                counts["targets"] += cli.hdel(keys.worker_targets(), host)
    return counts


@job("maintenance", "cleanup-orphans", attempts=1, remove_on_complete=20)
def cleanup_orphans_job(data: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    counts = cleanup_orphans()
    ctx.log(f"orphans removed: {counts}")
    return counts


def aggregate_metrics(queue: str) -> int:
    """Add the minute buckets of finished hours into hourly hashes; returns minutes rolled.

    The hourly hashes (kept a week) feed ``queues.health_history``.

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
