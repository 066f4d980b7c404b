"""The autoscaler: a beat-driven check that applies each queue's scaling policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from queues import registry
from queues.manager import queue_status
from workers.models import ScalingPolicy
from workers.presence import list_workers
from workers.scaling import QueueMetrics, ScalingResult, clamp, recommended_processes, scale_workers

ACTOR = "system:autoscaler"


@dataclass(frozen=True)
class AutoscaleDecision:
    queue: str
    current: int
    recommended: int
    target: int
    outcome: str  # scaled | no_change | cooldown | disabled
    result: ScalingResult | None = None


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
    target = clamp(wanted, current=m.current_processes, low=spec.min_workers,
                   high=spec.max_workers, up_step=policy.max_scale_up_step,
                   down_step=policy.max_scale_down_step)
    if target == m.current_processes or m.current_processes == 0:
        # With no live worker there is nothing to resize here; the exported
        # scale target tells an external scaler to start one.
        return AutoscaleDecision(queue, m.current_processes, wanted, target, "no_change")
    now = timezone.now()
    if _in_cooldown(policy, target > m.current_processes, now):
        return AutoscaleDecision(queue, m.current_processes, wanted, target, "cooldown")
    result = scale_workers(queue, target, actor=ACTOR)
    if result.action != "no_change":
        ScalingPolicy.objects.filter(pk=policy.pk).update(
            last_scaled_at=now, last_direction="up" if target > m.current_processes else "down")
    return AutoscaleDecision(queue, m.current_processes, wanted, target, "scaled", result)


def check_all() -> list[AutoscaleDecision]:
    """Run the check for every queue type with an enabled policy."""
    names = ScalingPolicy.objects.filter(enabled=True).values_list("queue_type__name", flat=True)
    return [check_autoscaling(name) for name in names]
