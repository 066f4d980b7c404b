"""Admin for autoscaling policies; changes are audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from queues import signals
from workers.models import ScalingPolicy


@admin.register(ScalingPolicy)
class ScalingPolicyAdmin(admin.ModelAdmin):
    list_display = ("queue_type", "enabled", "target_processing_time_ms", "scaling_factor",
                    "max_scale_up_step", "max_scale_down_step", "last_scaled_at")
    readonly_fields = ("last_scaled_at", "last_direction")

    def save_model(self, request: HttpRequest, obj: ScalingPolicy, form: Any,
                   change: bool) -> None:
        super().save_model(request, obj, form, change)
        signals.announce(request.user.get_username(), "scaling_policy",
                         target_type="queue", target_id=obj.queue_type.name,
                         queue=obj.queue_type.name, fields=sorted(form.changed_data))
