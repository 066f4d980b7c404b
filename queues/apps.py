"""App config of ``queues``: wires the registry cache and imports the job modules."""

from __future__ import annotations

import importlib

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_delete, post_save


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Job queues"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from queues import registry
        from queues.models import QueueType

        post_save.connect(registry.invalidate, sender=QueueType, dispatch_uid="jq-registry-save")
        post_delete.connect(registry.invalidate, sender=QueueType, dispatch_uid="jq-registry-del")
        # Job declarations must exist in every process that enqueues (web,
        # beat, shells), not only in workers that import CELERY_IMPORTS.
        for module in ["queues.maintenance", *settings.JOB_MODULES]:
            importlib.import_module(module)
