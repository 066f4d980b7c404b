"""Retention: beat entries per queue type, and the dead-letter half of the cleanup policy.

``ensure_schedules`` keeps one django-celery-beat entry per queue type for
``maintenance:clean-queue`` (Redis records) and one for
``maintenance:expire-dead-letters`` (SQL rows). It runs after every
``migrate`` and from ``manage.py jobqueue schedule-maintenance``; entries are
visible and editable in the beat admin.
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


def ensure_schedules() -> int:
    """Create or update the retention entries of every queue type; returns how many are new."""
    created = 0
    for qt in QueueType.objects.all():
        created += _entry(f"clean-queue {qt.name}", task_name("maintenance", "clean-queue"),
                          qt.cleanup_interval_ms // 1000, qt.name, enabled=qt.cleanup_enabled)
        created += _entry(f"expire-dead-letters {qt.name}",
                          task_name("maintenance", "expire-dead-letters"),
                          DEAD_LETTER_CHECK_SECONDS, qt.name,
                          enabled=bool(qt.dead_letter_archive_after_days
                                       or qt.dead_letter_purge_after_days))
    return created


def on_post_migrate(sender: Any, **kwargs: Any) -> None:
    """Keep the beat entries in step with the queue types after each ``migrate``."""
    if sender.name == "deadletter":
        ensure_schedules()


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
