"""Queue management: status, list, cleanup, pause/resume, create/destroy of queue types.

Every lifecycle change sends ``queues.signals.management_action`` once it took
effect; ``deadletter`` records the audit event and keeps the queue type's
retention beat entries in step (this app never imports it, DESIGN §3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from queues import registry, signals, store
from queues.exceptions import (
    BackendUnavailable,
    ConfigurationError,
    QueueNotEmpty,
    QueueTypeAlreadyRegistered,
)
from queues.jobs import producer
from queues.ops import stats
from queues.store import queue_state
from queues.store import stats as stats_store

logger = logging.getLogger("queues.ops.manager")

# A worker counts as live while its last heartbeat is this many intervals old at most.


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
    now = queue_state.snapshot(name)
    recent = stats.window(name)
    return QueueStatus(
        name=name,
        is_paused=now.paused,
        job_counts=now.counts,
        workers=now.live_workers,
        processing_rate=round(recent.processing_rate, 3),
        average_processing_time=round(recent.average_processing_time, 3),
    )


def list_queues() -> list[str]:
    """Names of every registered queue type."""
    return sorted(registry.all_specs())


def totals(name: str) -> dict[str, int]:
    """All-time counters of a queue: scheduled, completed, failed."""
    counters = stats_store.counters(name)
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


# --- Lifecycle ---------------------------------------------------------------------------

def _broadcast(command: str, **arguments: Any) -> int:
    """Tell every worker (they act only on queues they were started with); returns replies."""
    from celery import current_app

    replies = current_app.control.broadcast(command, arguments=arguments, reply=True,
                                            timeout=0.5)
    return len(replies or [])


def pause_queue(name: str, *, actor: str = "system") -> None:
    """Stop new jobs of ``name`` from starting, on every worker, until resumed.

    The paused flag is durable: workers check it at start-up, every second,
    and at claim (a job already fetched is parked, not run). Jobs already
    running finish.

    Raises:
        QueueTypeNotFound, BackendUnavailable.
    """
    registry.get(name)
    queue_state.set_paused(name)
    workers = _broadcast("jq_sync_consumers", queue=name)
    signals.announce(actor, "pause", target_type="queue", target_id=name, queue=name,
                     workers_told=workers)


def resume_queue(name: str, *, actor: str = "system") -> int:
    """Let ``name`` run again and release its parked jobs in their order; returns how many.

    Raises:
        QueueTypeNotFound, BackendUnavailable.
    """
    registry.get(name)
    released, resumed = 0, False
    while not resumed:
        count, resumed = store.release(name, _parked_batch(name))
        released += count
    workers = _broadcast("jq_sync_consumers", queue=name)
    signals.announce(actor, "resume", target_type="queue", target_id=name, queue=name,
                     workers_told=workers, released=released)
    return released


def _parked_batch(name: str, size: int = 500) -> list[tuple[str, int, Any]]:
    """The oldest parked jobs, each with a fresh message, newest first (see RELEASE)."""
    batch = []
    for job_id in queue_state.parked_ids(name, size):
        record = store.read_record(name, job_id)
        if record is None or record.state != "paused":
            queue_state.drop_parked(name, job_id)
            continue
        batch.append((job_id, record.gen, producer.next_message(record)))
    return batch[::-1]


def create_queue(name: str, config: dict[str, Any] | None = None, *,
                 actor: str = "system") -> registry.QueueTypeSpec:
    """Register a new queue type at runtime (seed ``QueueConfig`` as model fields).

    Workers started with ``-Q <name>`` serve it without a code change.

    Raises:
        QueueTypeAlreadyRegistered: the name exists.
        ConfigurationError: invalid configuration (the message names the fields).
    """
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    from queues.models import QueueType

    fields = {"display_name": name, **(config or {})}
    if QueueType.objects.filter(name=name).exists():
        raise QueueTypeAlreadyRegistered(name)
    unknown = set(fields) - {f.name for f in QueueType._meta.fields}
    if unknown:
        raise ConfigurationError(f"unknown queue type fields: {sorted(unknown)}")
    row = QueueType(name=name, **fields)
    try:
        row.full_clean()
        with transaction.atomic():
            row.save()
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None
    except IntegrityError:
        raise QueueTypeAlreadyRegistered(name) from None
    registry.invalidate()
    signals.announce(actor, "create_queue", target_type="queue", target_id=name, queue=name,
                     config=fields)
    _apply_limits(row)
    return registry.get(name)


def _apply_limits(row: Any) -> None:
    """A queue type created with limits applies them at once (else at a worker's start)."""
    from queues.ops import limits
    from queues.store import gate

    new = limits.of_row(row)
    if new == limits.QueueLimits():
        return
    try:
        gate.write_limits(row.name, new.as_store())  # create_queue's audit event names them
    except BackendUnavailable as exc:
        logger.warning("limits of new queue %s apply when a worker starts: %s", row.name, exc)


def _describe(exc: Any) -> str:
    return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())


def destroy_queue(name: str, *, force: bool = False, actor: str = "system") -> int:
    """Remove a queue type: its registry row and every Redis key of the queue.

    Returns how many Redis keys were deleted.

    Raises:
        QueueTypeNotFound: no such queue type.
        QueueNotEmpty: jobs are waiting, delayed, paused or active (unless ``force``).
    """
    from queues.models import QueueType

    registry.get(name)
    counts = store_counts(name)
    busy = {s: counts[s] for s in ("waiting-children", "waiting", "delayed", "limited", "paused",
                                   "active") if counts[s]}
    if busy and not force:
        raise QueueNotEmpty(name, busy)
    deleted = _delete_queue_keys(name)
    QueueType.objects.filter(name=name).delete()
    registry.invalidate()
    signals.announce(actor, "destroy_queue", target_type="queue", target_id=name, queue=name,
                     forced=force, jobs=busy, redis_keys=deleted)
    return deleted


def store_counts(name: str) -> dict[str, int]:
    return queue_state.state_counts(name)


def _delete_queue_keys(name: str) -> int:
    """Delete the queue's own keys (by hash tag) and its broker lists."""
    from celery import current_app

    from queues.jobs.messages import broker_keys

    return queue_state.delete_queue(name, broker_keys(current_app, name))
