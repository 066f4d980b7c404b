"""Admin for the queue-type registry."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from queues.exceptions import CoordinatorError
from queues.models import QueueType
from queues.ops import manager

# The index links the dashboard (queues.http.dashboard) for users who may view it.
admin.site.index_template = "admin/coordinator/index.html"


@admin.register(QueueType)
class QueueTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "display_name", "default_attempts", "backoff_type",
                    "concurrency", "min_workers", "max_workers", "updated_at")
    search_fields = ("name", "display_name", "description")
    # An empty job option or concurrency inherits the global setting (DEFAULT_JOB_*, ...).
    empty_value_display = _("(global default)")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "display_name", "description", "job_types")}),
        ("Default job options", {"fields": (
            "default_attempts", "backoff_type", "backoff_delay_ms", "backoff_max_delay_ms",
            "remove_on_complete", "remove_on_fail", "default_priority")}),
        ("Worker settings", {"fields": (
            "stalled_interval_ms", "retry_process_delay_ms", "max_stalled_count", "concurrency")}),
        ("Flow control", {
            "fields": ("rate_limit_max", "rate_limit_duration_ms", "global_concurrency",
                       "group_concurrency", "group_rate_limit_max",
                       "group_rate_limit_duration_ms"),
            "description": _("Enforced at claim on every worker; a change applies within a "
                             "second. Empty: no such limit. Group limits apply to jobs "
                             "enqueued with a 'group' option.")}),
        ("Scaling", {"fields": ("min_workers", "max_workers", "scaling_threshold")}),
        ("Cleanup", {"fields": ("cleanup_enabled", "completed_job_age_ms", "failed_job_age_ms",
                                "cleanup_interval_ms", "dead_letter_archive_after_days",
                                "dead_letter_purge_after_days")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    actions = ["destroy"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Removing a queue type must also clear its Redis keys and refuse
        # while jobs wait: that is the "destroy" action (manager.destroy_queue).
        return False

    def has_destroy_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("queues.delete_queuetype")

    def save_model(self, request: HttpRequest, obj: QueueType, form: Any, change: bool) -> None:
        from queues import signals
        from queues.ops import limits

        previous = limits.of_row(QueueType.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        actor = request.user.get_username()
        signals.announce(actor, "update_queue" if change else "create_queue",
                         target_type="queue", target_id=obj.name, queue=obj.name,
                         fields=sorted(form.changed_data))
        # The limits' live copy, which every worker's claim reads (audited as set_limits).
        new = limits.of_row(obj)
        limits.applied(obj.name, new, previous=previous or limits.QueueLimits(), actor=actor)

    @admin.action(description=_("Destroy selected queue types (refused while jobs wait)"),
                  permissions=["destroy"])
    def destroy(self, request: HttpRequest, queryset: QuerySet[QueueType]) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            rows = list(queryset)
            return TemplateResponse(request, "admin/coordinator/confirm_action.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta,
                "title": _("Are you sure?"), "action": "destroy", "queryset": rows,
                "preview": rows, "more": 0, "with_reason": False,
                "question": _("Destroy these queue types and all their Redis data?")})
        for row in queryset:
            try:
                manager.destroy_queue(row.name, actor=request.user.get_username())
            except CoordinatorError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, _("Destroyed %(name)s.") % {"name": row.name})
        return None
