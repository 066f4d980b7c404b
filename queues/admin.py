"""Admin for the queue-type registry."""

from __future__ import annotations

from django.contrib import admin

from queues.models import QueueType


@admin.register(QueueType)
class QueueTypeAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "display_name", "default_attempts", "backoff_type",
                    "concurrency", "min_workers", "max_workers", "updated_at")
    search_fields = ("name", "display_name", "description")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "display_name", "description", "job_types")}),
        ("Default job options", {"fields": (
            "default_attempts", "backoff_type", "backoff_delay_ms", "backoff_max_delay_ms",
            "remove_on_complete", "remove_on_fail", "default_priority")}),
        ("Worker settings", {"fields": (
            "stalled_interval_ms", "retry_process_delay_ms", "max_stalled_count", "concurrency")}),
        ("Scaling", {"fields": ("min_workers", "max_workers", "scaling_threshold")}),
        ("Cleanup", {"fields": ("cleanup_enabled", "completed_job_age_ms", "failed_job_age_ms",
                                "cleanup_interval_ms", "dead_letter_archive_after_days",
                                "dead_letter_purge_after_days")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Removing a queue type must also clear its Redis keys and refuse
        # while jobs wait; that is ``manager.destroy_queue``, not a row delete.
        return False
