"""Scaling the processes that serve a queue, by hand and by policy (seed §6.1, §3.3).

``scale_workers`` resizes the pools of the live workers that serve a queue
through Celery's remote control (``pool_grow``/``pool_shrink``) and checks
each reply; the per-worker size is stored so a restarted worker comes back
at it. What running workers cannot host is reported in ``actual_count`` and
the wanted total is kept in the queue's meta hash (``scale_target``) for an
external scaler (KEDA/HPA) to add worker pods; ``record_target`` only sets that
total (the autoscaler's answer when no worker is live).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from queues import registry, signals
from queues.store import workers as worker_store
from workers.presence import WorkerStatus, list_workers

MAX_TARGET = 1000  # processes one scale_workers call may ask for a queue


@dataclass(frozen=True)
class ScalingResult:
    """Seed ``ScalingResult``; counts are pool processes serving the queue."""

    queue_name: str
    previous_count: int
    target_count: int
    actual_count: int
    action: str  # scaled_up | scaled_down | no_change


def _shares(target: int, workers: int) -> list[int]:
    """Split ``target`` processes over ``workers`` evenly; each keeps at least one."""
    base, extra = divmod(target, workers)
    return [max(1, base + (1 if i < extra else 0)) for i in range(workers)]


def _resize(worker: WorkerStatus, size: int) -> int:
    """Grow or shrink one worker's pool to ``size``; returns the size it has now."""
    from celery import current_app

    delta = size - worker.concurrency
    if delta == 0:
        return size
    command = current_app.control.pool_grow if delta > 0 else current_app.control.pool_shrink
    replies = command(abs(delta), destination=[worker.id], reply=True, timeout=2) or []
    ok = any("ok" in reply.get(worker.id, {}) for reply in replies)
    if not ok:
        return worker.concurrency
    worker_store.set_pool_target(worker.id, size)
    return size


def scale_workers(queue: str, target: int, *, actor: str = "system") -> ScalingResult:
    """Set the number of processes serving ``queue`` across its live workers.

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
        ConfigurationError: ``target`` is outside 0..``MAX_TARGET``.
    """
    from queues.exceptions import ConfigurationError

    registry.get(queue)
    if not 0 <= target <= MAX_TARGET:
        raise ConfigurationError(f"targetWorkers must be 0 to {MAX_TARGET}")
    live = [w for w in list_workers(queue) if w.status != "stale"]
    previous = sum(w.concurrency for w in live)
    actual = sum(_resize(w, share) for w, share in zip(live, _shares(target, len(live)),
                                                       strict=True)) if live else 0
    action = ("scaled_up" if actual > previous else "scaled_down" if actual < previous
              else "no_change")
    worker_store.set_queue_target(queue, target, scaled=action != "no_change")
    signals.announce(actor, "scale", target_type="queue", target_id=queue, queue=queue,
                     previous=previous, target=target, actual=actual)
    return ScalingResult(queue, previous, target, actual, action)


def record_target(queue: str, target: int, *, actor: str, reason: str) -> bool:
    """Store the wanted total for an external scaler without resizing anything.

    Audited only when the stored target changes: the autoscaler calls this
    on every check while no worker runs, and one row per check is noise.
    Returns whether it changed.

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    previous = worker_store.swap_queue_target(queue, target)
    if previous == target:
        return False
    signals.announce(actor, "scale", target_type="queue", target_id=queue, queue=queue,
                     previous=0, target=target, actual=0, reason=reason)
    return True


@dataclass(frozen=True)
class QueueMetrics:
    """What the autoscaler looks at (seed ``QueueMetrics``)."""

    waiting: int
    active: int
    current_processes: int
    processing_rate: float  # jobs per minute, all processes together
    average_processing_time: float  # milliseconds


def recommended_processes(m: QueueMetrics, *, target_ms: int, factor: float) -> int:
    """Seed ``calculateRecommendedWorkers``, made safe (DESIGN §8.7).

    Units: jobs per minute per process. With no rate yet (no processes, or none
    finished recently) the recent processing time stands in; with neither,
    one job per minute. Never fewer processes than jobs running now.
    """
    if m.waiting == 0:
        wanted = math.floor(m.current_processes * 0.7)
    else:
        if m.current_processes and m.processing_rate:
            per_process = m.processing_rate / m.current_processes
        elif m.average_processing_time:
            per_process = 60000 / m.average_processing_time
        else:
            per_process = 1.0
        required = math.ceil(m.waiting / (per_process * target_ms / 60000))
        wanted = math.ceil(required * factor)
    return max(wanted, m.active)


def clamp(wanted: int, *, current: int, low: int, high: int, up_step: int,
          down_step: int) -> int:
    """Keep within the queue type's min/max and the policy's step limits."""
    bounded = max(low, min(high, wanted))
    return max(current - down_step, min(current + up_step, bounded))


