"""App config of ``deadletter``: the failed-job store and audit trail."""

from django.apps import AppConfig


class DeadletterConfig(AppConfig):
    name = "deadletter"
    verbose_name = "Dead letters and audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from deadletter import dashboard_hooks, recording, retention, services, tasks  # noqa: F401
        from deadletter.worker_duties import register_with_workers
        from queues.signals import job_failed, management_action

        job_failed.connect(recording.record_failure, dispatch_uid="deadletter-record-failure")
        management_action.connect(services.on_management_action, dispatch_uid="deadletter-audit")
        management_action.connect(retention.on_management_action,
                                  dispatch_uid="deadletter-retention-schedules")
        post_migrate.connect(retention.on_post_migrate, dispatch_uid="deadletter-retention")
        # The worker's flush of dead letters kept during a database outage, through the
        # hook of workers (deadletter does not import workers: DESIGN §3).
        register_with_workers()
        # The dashboard's "Retry" of a failed job and its dead-letter links.
        dashboard_hooks.register()
