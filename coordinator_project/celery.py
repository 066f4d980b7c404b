"""The Celery app of the coordinator.

Configuration comes from Django settings (``CELERY_*``). Jobs declared with
``queues.jobs.job`` route themselves to their queue type's Redis queue; the
worker bootsteps are added in ``workers.bootsteps`` when the worker app loads.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordinator_project.settings")

app = Celery("coordinator_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _install_worker_steps() -> None:
    # Imported lazily: bootsteps need Django's app registry, which is ready
    # only once the worker has imported the project.
    from workers.bootsteps import install

    install(app)


_install_worker_steps()
