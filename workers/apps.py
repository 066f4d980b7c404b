"""App config of ``workers``: what runs inside ``celery worker``, presence and scaling."""

from types import ModuleType
from typing import Any

from django.apps import AppConfig

from workers.duties import DutyFunction, DutyRegistry


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers"
    default_auto_field = "django.db.models.BigAutoField"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        # Filled by other apps' ready(); exists before any ready() runs, so the order of
        # INSTALLED_APPS does not matter.
        self.duties = DutyRegistry()

    def register_duty(self, name: str, run: DutyFunction, *, interval_s: float) -> None:
        """Add a periodic duty to every worker's coordinator thread (see ``workers.duties``).

        Raises:
            ValueError: ``interval_s`` is not a positive number of seconds.
        """
        self.duties.register(name, run, interval_s=interval_s)

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from workers import tasks  # noqa: F401  (declares the autoscale job)

        post_migrate.connect(_schedule_autoscaler, sender=self, dispatch_uid="jq-autoscaler")


def _schedule_autoscaler(sender: Any, **kwargs: Any) -> None:
    """One beat entry runs the autoscaler every AUTO_SCALING_CHECK_INTERVAL."""
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from queues.conf import settings
    from queues.jobs import task_name

    every, _ = IntervalSchedule.objects.get_or_create(
        every=max(1, settings.AUTO_SCALING_CHECK_INTERVAL // 1000), period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(name="autoscale", defaults={
        "task": task_name("maintenance", "autoscale"), "interval": every, "kwargs": json.dumps({}),
        "queue": "maintenance", "enabled": settings.ENABLE_AUTO_SCALING,
        "description": "Apply the autoscaling policies (workers.autoscaling)"})
