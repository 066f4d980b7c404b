"""App config of ``queues``: wires the registry cache and imports the job modules."""

from __future__ import annotations

import importlib
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_delete, post_migrate, post_save


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Job queues"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from queues import registry
        from queues.models import QueueType

        post_migrate.connect(_schedule_maintenance, sender=self, dispatch_uid="jq-maintenance")
        post_save.connect(registry.invalidate, sender=QueueType, dispatch_uid="jq-registry-save")
        post_delete.connect(registry.invalidate, sender=QueueType, dispatch_uid="jq-registry-del")
        # Job declarations must exist in every process that enqueues (web,
        # beat, shells), not only in workers that import CELERY_IMPORTS.
        for module in ["queues.ops.maintenance", "queues.ops.bulk", *settings.JOB_MODULES]:
            importlib.import_module(module)


# Coordinator-wide maintenance jobs (all queues) and how often beat runs them. The
# entries with a setting of their own (metrics-aggregation, health-check: ENABLE_* and
# *_INTERVAL) are kept in step with it by deadletter.retention.ensure_schedules.
MAINTENANCE = {"consistency-check": 3600, "cleanup-orphans": 3600}


def _schedule_maintenance(sender: Any, **kwargs: Any) -> None:
    """Keep one beat entry per maintenance job type (editable in the beat admin)."""
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from queues.jobs import task_name

    for name, seconds in MAINTENANCE.items():
        every, _ = IntervalSchedule.objects.get_or_create(every=seconds,
                                                          period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.get_or_create(name=name, defaults={
            "task": task_name("maintenance", name), "interval": every,
            "kwargs": json.dumps({}), "queue": "maintenance",
            "description": f"Coordinator maintenance: {name} (queues.ops.maintenance)"})
