"""The Celery app of the coordinator.

Configuration comes from Django settings (``CELERY_*``). Jobs declared with
``queues.jobs.job`` route themselves to their queue type's Redis queue; the
worker's coordinator step (``workers.bootsteps``) is added by name, so it is
imported only when a worker starts;
``workers.concurrency`` sizes a worker's pool from its queue type when no ``-c``
is given.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordinator_project.settings")

app = Celery("coordinator_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# By name: Celery imports the step (and with it ``workers``) only when a worker builds
# its blueprint, so importing this module loads none of the apps.
app.steps["worker"].add("workers.bootsteps:CoordinatorStep")


@worker_init.connect(weak=False, dispatch_uid="jq-pool-from-queue-type")
def _pool_from_queue_type(sender: Any, **kwargs: Any) -> None:
    # A queue type's concurrency sizes a worker serving only it, unless -c was given.
    if sender.app is app:
        from workers.concurrency import apply_queue_type_concurrency

        apply_queue_type_concurrency(sender, **kwargs)
