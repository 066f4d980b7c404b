"""App config of ``deadletter``: the failed-job store and audit trail."""

from django.apps import AppConfig


class DeadletterConfig(AppConfig):
    name = "deadletter"
    verbose_name = "Dead letters and audit"
    default_auto_field = "django.db.models.BigAutoField"
