"""App config of ``deadletter``: the failed-job store and audit trail."""

from django.apps import AppConfig


class DeadletterConfig(AppConfig):
    name = "deadletter"
    verbose_name = "Dead letters and audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from deadletter import recording, retention, tasks  # noqa: F401  (tasks declares a job)
        from queues.signals import job_failed

        job_failed.connect(recording.record_failure, dispatch_uid="deadletter-record-failure")
        post_migrate.connect(retention.on_post_migrate, dispatch_uid="deadletter-retention")
