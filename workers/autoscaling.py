"""The autoscaler: a beat-driven check that applies each queue's scaling policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from queues import registry
from queues.ops.manager import queue_status
from workers.models import ScalingPolicy
from workers.presence import list_workers
from workers.scaling import (
    QueueMetrics,
    ScalingResult,
    clamp,
    recommended_processes,
    record_target,
    scale_workers,
)

ACTOR = "system:autoscaler"
NO_WORKERS = "no workers: external scaler must add some"


@dataclass(frozen=True)
class AutoscaleDecision:
    queue: str
    current: int
    recommended: int
    target: int
    outcome: str  # scaled | scale_up | no_change | cooldown | disabled
    result: ScalingResult | None = None
    reason: str = ""


def queue_metrics(queue: str) -> QueueMetrics:
    """Live figures of ``queue`` from Redis (status, rates, worker heartbeats)."""
    status = queue_status(queue)
    live = [w for w in list_workers(queue) if w.status != "stale"]
    return QueueMetrics(
        waiting=status.job_counts["waiting"],
        active=status.job_counts["active"],
        current_processes=sum(w.concurrency for w in live),
        processing_rate=status.processing_rate,
        average_processing_time=status.average_processing_time,
    )


def _in_cooldown(policy: ScalingPolicy, up: bool, now: datetime) -> bool:
    if policy.last_scaled_at is None:
        return False
    wait = policy.scale_up_cooldown_ms if up else policy.scale_down_cooldown_ms
    return now - policy.last_scaled_at < timedelta(milliseconds=wait)


def check_autoscaling(queue: str) -> AutoscaleDecision:
    """Apply ``queue``'s policy once: recommend, clamp, respect cooldown, scale.

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
    """
    spec = registry.get(queue)
    policy = ScalingPolicy.objects.filter(queue_type__name=queue, enabled=True).first()
    m = queue_metrics(queue)
    if policy is None:
        return AutoscaleDecision(queue, m.current_processes, m.current_processes,
                                 m.current_processes, "disabled")
    wanted = recommended_processes(m, target_ms=policy.target_processing_time_ms,
                                   factor=policy.scaling_factor)
    if m.current_processes == 0:  # nothing to resize here: ask an external scaler
        return _ask_external_scaler(queue, wanted, spec)
    target = clamp(wanted, current=m.current_processes, low=spec.min_workers,
                   high=spec.max_workers, up_step=policy.max_scale_up_step,
                   down_step=policy.max_scale_down_step)
    if target == m.current_processes:
        return AutoscaleDecision(queue, m.current_processes, wanted, target, "no_change")
    now = timezone.now()
    if _in_cooldown(policy, target > m.current_processes, now):
        return AutoscaleDecision(queue, m.current_processes, wanted, target, "cooldown")
    result = scale_workers(queue, target, actor=ACTOR)
    if result.action != "no_change":
        ScalingPolicy.objects.filter(pk=policy.pk).update(
            last_scaled_at=now, last_direction="up" if target > m.current_processes else "down")
    return AutoscaleDecision(queue, m.current_processes, wanted, target, "scaled", result)


def _ask_external_scaler(queue: str, wanted: int,
                         spec: registry.QueueTypeSpec) -> AutoscaleDecision:
    """No live worker: nothing here can be resized, so record the wanted total.

    ``scale_target`` (exported as ``queue_desired_processes``) is what an
    external scaler (KEDA/HPA) reads to start worker pods: the recommendation
    within the queue type's min/max. The policy's steps and cooldowns pace
    resizes of running pools; from zero they would hold it below its minimum.
    """
    target = max(spec.min_workers, min(spec.max_workers, wanted))
    if target <= 0:  # nothing waits and the queue type allows none: ask for zero
        record_target(queue, 0, actor=ACTOR, reason="no workers and no work")
        return AutoscaleDecision(queue, 0, wanted, 0, "no_change")
    record_target(queue, target, actor=ACTOR, reason=NO_WORKERS)
    return AutoscaleDecision(queue, 0, wanted, target, "scale_up", reason=NO_WORKERS)


def check_all() -> list[AutoscaleDecision]:
    """Run the check for every queue type with an enabled policy."""
    names = ScalingPolicy.objects.filter(enabled=True).values_list("queue_type__name", flat=True)
    return [check_autoscaling(name) for name in names]
