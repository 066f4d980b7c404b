"""Autoscaling policies (seed §6.1 ``AutoScalingPolicy``), edited by people in admin.

Minimum and maximum processes live on the queue type (DESIGN §8.6); a policy
holds only the dynamics.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


def default_cooldown() -> int:
    """SCALING_COOLDOWN_PERIOD (ms), the seed's default for both directions."""
    from queues.conf import settings

    return int(settings.SCALING_COOLDOWN_PERIOD)


class ScalingPolicy(models.Model):
    queue_type = models.OneToOneField("queues.QueueType", on_delete=models.CASCADE,
                                      related_name="scaling_policy")
    enabled = models.BooleanField(default=True)
    target_processing_time_ms = models.PositiveIntegerField(
        default=60000, validators=[MinValueValidator(1000)],
        help_text=_("Aim to clear the backlog within this time."))
    scaling_factor = models.FloatField(default=1.2, validators=[MinValueValidator(1.0)])
    scale_up_cooldown_ms = models.PositiveIntegerField(default=default_cooldown)
    scale_down_cooldown_ms = models.PositiveIntegerField(default=default_cooldown)
    max_scale_up_step = models.PositiveIntegerField(default=4, validators=[MinValueValidator(1)])
    max_scale_down_step = models.PositiveIntegerField(default=2,
                                                      validators=[MinValueValidator(1)])
    last_scaled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_direction = models.CharField(max_length=8, blank=True, editable=False)

    class Meta:
        verbose_name = _("autoscaling policy")
        verbose_name_plural = _("autoscaling policies")

    def __str__(self) -> str:
        return f"autoscaling of {self.queue_type}"
