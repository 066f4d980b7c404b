"""Retention: beat entries per queue type, and the dead-letter half of the cleanup policy.

``ensure_schedules`` keeps one django-celery-beat entry per queue type for
``maintenance:clean-queue`` (Redis records) and one for
``maintenance:expire-dead-letters`` (SQL rows). It runs after every
``migrate`` and from ``manage.py jobqueue schedule-maintenance``; entries are
visible and editable in the beat admin. A queue type created, edited or
destroyed at runtime updates its entries at once (``on_management_action``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from deadletter.models import DeadLetter
from deadletter.services import AUDIT_MAX_JOB_IDS, audit, job_id_details, purge_dead_letters
from queues.conf import settings
from queues.jobs import task_name
from queues.models import QueueType

RETENTION_ACTOR = "system:retention"
DEAD_LETTER_CHECK_SECONDS = 24 * 3600


def _entry(name: str, task: str, every_s: int, queue: str, *, enabled: bool) -> bool:
    schedule, _ = IntervalSchedule.objects.get_or_create(
        every=max(1, every_s), period=IntervalSchedule.SECONDS)
    _, created = PeriodicTask.objects.update_or_create(
        name=name,
        defaults={"task": task, "interval": schedule, "kwargs": json.dumps({"queue": queue}),
                  "queue": "maintenance", "enabled": enabled,
                  "description": f"Retention for queue type {queue} (from its cleanup policy)"},
    )
    return created


def entry_names(queue: str) -> tuple[str, str]:
    """The names of ``queue``'s two retention entries (clean-queue, expire-dead-letters)."""
    return f"clean-queue {queue}", f"expire-dead-letters {queue}"


def ensure_queue_schedules(qt: QueueType) -> int:
    """Create or update one queue type's two retention entries; returns how many are new."""
    clean, expire = entry_names(qt.name)
    created = int(_entry(clean, task_name("maintenance", "clean-queue"),
                         qt.cleanup_interval_ms // 1000, qt.name, enabled=qt.cleanup_enabled))
    created += _entry(expire, task_name("maintenance", "expire-dead-letters"),
                      DEAD_LETTER_CHECK_SECONDS, qt.name,
                      enabled=bool(qt.dead_letter_archive_after_days
                                   or qt.dead_letter_purge_after_days))
    return created


def ensure_schedules() -> int:
    """Create or update the retention entries of every queue type; returns how many are new."""
    return (sum(ensure_queue_schedules(qt) for qt in QueueType.objects.all())
            + ensure_monitoring_schedules())


# The coordinator-wide monitoring jobs, each an on/off setting plus an interval (ms).
MONITORING = {
    "health-check": ("ENABLE_HEALTH_CHECKS", "HEALTH_CHECK_INTERVAL",
                     "Record every queue's health transitions (queues.ops.health_history)"),
    "metrics-aggregation": ("ENABLE_METRICS_COLLECTION", "METRICS_COLLECTION_INTERVAL",
                            "Roll minute stats into hourly ones (queues.ops.maintenance)"),
}


def ensure_monitoring_schedules() -> int:
    """Keep the monitoring entries in step with their settings; returns how many are new.

    An enabled job gets an entry every ``<interval> // 1000`` s (at least 1 s),
    updated when the interval changes; a disabled one has no entry at all.
    """
    created = 0
    for name, (flag, interval, description) in MONITORING.items():
        if not getattr(settings, flag):
            for row in PeriodicTask.objects.filter(name=name):
                row.delete()  # one by one: delete() tells a running beat to reload
            continue
        schedule, _ = IntervalSchedule.objects.get_or_create(
            every=max(1, getattr(settings, interval) // 1000), period=IntervalSchedule.SECONDS)
        _, new = PeriodicTask.objects.update_or_create(name=name, defaults={
            "task": task_name("maintenance", name), "interval": schedule, "kwargs": "{}",
            "queue": "maintenance", "enabled": True,
            "description": f"{description}; from {flag} and {interval}"})
        created += new
    return created


def remove_queue_schedules(queue: str) -> int:
    """Delete ``queue``'s retention entries (its type was destroyed); returns how many."""
    # One delete() per row, not a bulk one: PeriodicTask.delete() bumps the
    # change marker that a running beat polls to reload its schedule.
    rows = list(PeriodicTask.objects.filter(name__in=entry_names(queue)))
    for row in rows:
        row.delete()
    return len(rows)


def on_post_migrate(sender: Any, **kwargs: Any) -> None:
    """Keep the beat entries in step with the queue types after each ``migrate``."""
    if sender.name == "deadletter":
        ensure_schedules()


_QUEUE_TYPE_ACTIONS = {"create_queue", "update_queue", "destroy_queue"}


def on_management_action(sender: Any, *, action: str, queue: str, **_: Any) -> None:
    """Receiver of ``queues.signals.management_action``: a queue type created, edited
    or destroyed at runtime (Python, HTTP, CLI, admin) gets, changes or loses its
    retention entries at once, without waiting for the next ``migrate``."""
    if action not in _QUEUE_TYPE_ACTIONS:
        return
    qt = QueueType.objects.filter(name=queue).first()
    if qt is None:
        remove_queue_schedules(queue)
    else:
        ensure_queue_schedules(qt)


def apply_policy(queue: str) -> dict[str, int]:
    """Archive, then purge, the queue's old dead letters as its queue type says."""
    qt = QueueType.objects.get(name=queue)
    archived = purged = 0
    now = timezone.now()
    if qt.dead_letter_archive_after_days:
        cutoff = now - timedelta(days=qt.dead_letter_archive_after_days)
        due = DeadLetter.objects.in_queue(queue).requeueable().older_than(cutoff)
        with transaction.atomic():
            job_ids = list(due.values_list("job_id", flat=True)[:AUDIT_MAX_JOB_IDS])
            archived = due.update(status=DeadLetter.Status.ARCHIVED, acted_by=RETENTION_ACTOR,
                                  acted_at=now, status_changed=now)
            if archived:
                audit(RETENTION_ACTOR, "archive", target_type="queue", target_id=queue,
                      queue=queue, archived=archived, older_than=cutoff.isoformat(),
                      **job_id_details(job_ids, archived))
    if qt.dead_letter_purge_after_days:
        purged = purge_dead_letters(
            queue, older_than=timedelta(days=qt.dead_letter_purge_after_days),
            actor=RETENTION_ACTOR)
    return {"archived": archived, "purged": purged}
