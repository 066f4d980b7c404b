"""Signals the coordinator sends; other apps connect to them in ``AppConfig.ready()``."""

from __future__ import annotations

from django.dispatch import Signal

# Sent once, in the worker, when a job reaches the failed state for good
# (attempts exhausted, non-retryable error, expired, stalled too often), and
# only by ``queues.jobs.failures.failed_for_good``.
# Arguments: queue, job_id, record (the job's final record, a dict of strings).
job_failed = Signal()

# Sent once by every management service (pause, resume, create, update and
# destroy of a queue type, scale, cancel_job, change_priority, ...) after it
# acted, never when it refused. ``deadletter`` records it as an AuditEvent
# (a ``job_id`` in details fills the event's job_id column) and keeps the
# queue type's retention beat entries in step with create/update/destroy.
# Arguments: actor, action, target_type, target_id, queue, details (dict).
management_action = Signal()

# Sent by the health-check job (queues.ops.health_history) when a queue's health
# status changes, e.g. healthy -> unhealthy. Arguments: queue, previous (None
# for a queue never checked before), current, issues (list of dicts with
# rule, severity, message).
queue_health_changed = Signal()


def announce(actor: str, action: str, *, target_type: str, target_id: str = "",
             queue: str = "", **details: object) -> None:
    """Send ``management_action`` for one action a service has just taken."""
    management_action.send(sender=None, actor=actor, action=action, target_type=target_type,
                           target_id=target_id, queue=queue, details=details)
