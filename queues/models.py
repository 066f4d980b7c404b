"""The queue-type registry (seed §5.1), kept in SQL because people edit it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

QUEUE_NAME_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
BACKOFF_TYPES = [("fixed", "fixed"), ("exponential", "exponential")]


def validate_remove_policy(value: Any) -> None:
    """``True`` (remove at once), ``False`` (keep all) or a count to keep."""
    if isinstance(value, bool):
        return
    if not isinstance(value, int) or value < 0:
        raise ValidationError(
            _("Use true, false or a non-negative number of records to keep (got %(value)r)."),
            params={"value": value},
        )


def validate_job_types(value: Any) -> None:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and re.fullmatch(r"[\w.:-]{1,128}", v) for v in value
    ):
        raise ValidationError(_("Job types must be a list of names (letters, digits, . _ : -)."))


def keep_100() -> int:
    return 100


def keep_50() -> int:
    return 50


def _ms(**kw: Any) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(**kw)


class QueueType(models.Model):
    """A kind of queue: its defaults for jobs, worker settings, scaling and cleanup."""

    name = models.CharField(
        max_length=64, unique=True,
        validators=[RegexValidator(QUEUE_NAME_RE,
                                   _("Lower-case letters, digits, '.', '_' and '-'."))],
    )
    display_name = models.CharField(max_length=128)
    description = models.TextField(blank=True)
    job_types = models.JSONField(default=list, blank=True, validators=[validate_job_types])

    # Default job options (seed defaultJobOptions). Empty means "inherit the global
    # default" (DEFAULT_JOB_ATTEMPTS, DEFAULT_JOB_BACKOFF_DELAY, DEFAULT_JOB_PRIORITY),
    # the lowest of the four levels of option precedence (DESIGN §8.12).
    default_attempts = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Empty: DEFAULT_JOB_ATTEMPTS."))
    backoff_type = models.CharField(max_length=16, choices=BACKOFF_TYPES, default="exponential")
    backoff_delay_ms = _ms(null=True, blank=True, help_text=_("Empty: DEFAULT_JOB_BACKOFF_DELAY."))
    backoff_max_delay_ms = _ms(default=300000)
    remove_on_complete = models.JSONField(default=keep_100, validators=[validate_remove_policy])
    remove_on_fail = models.JSONField(default=keep_50, validators=[validate_remove_policy])
    default_priority = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("0 (runs first) to 9. Empty: DEFAULT_JOB_PRIORITY."))
    # Time limits of one attempt (a job declaration may override them); empty: none.
    soft_time_limit_ms = _ms(null=True, blank=True, validators=[MinValueValidator(1)],
                             help_text=_("SoftTimeLimitExceeded is raised inside the job."))
    time_limit_ms = _ms(null=True, blank=True, validators=[MinValueValidator(1)],
                        help_text=_("The attempt is killed and fails as a timeout."))

    # Worker settings (seed settings).
    stalled_interval_ms = _ms(default=30000, validators=[MinValueValidator(1000)])
    retry_process_delay_ms = _ms(default=5000)
    max_stalled_count = models.PositiveIntegerField(default=1)
    # Pool size of a worker serving only this queue, unless -c is given (workers.concurrency).
    concurrency = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Pool size of a worker serving only this queue when -c is not given. "
                    "Empty: DEFAULT_WORKER_CONCURRENCY."))

    # Flow control across every worker (seed rateLimit, concurrency; queues.ops.limits):
    # enforced in the claim script. Empty: no such limit.
    rate_limit_max = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("At most this many jobs start in any window of the duration below."))
    rate_limit_duration_ms = _ms(null=True, blank=True, validators=[MinValueValidator(1)])
    global_concurrency = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("At most this many jobs of the queue run at once, across all workers."))
    group_concurrency = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Per job group (the 'group' option: a tenant, a customer)."))
    group_rate_limit_max = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)])
    group_rate_limit_duration_ms = _ms(null=True, blank=True, validators=[MinValueValidator(1)])

    # Scaling (seed scaling); the autoscaling dynamics live in workers.
    min_workers = models.PositiveIntegerField(default=1)
    max_workers = models.PositiveIntegerField(default=10)
    scaling_threshold = models.PositiveIntegerField(default=50)

    # Cleanup policy (seed §3.1 cleanup).
    cleanup_enabled = models.BooleanField(default=True)
    completed_job_age_ms = _ms(default=24 * 3600 * 1000)
    failed_job_age_ms = _ms(default=7 * 24 * 3600 * 1000)
    cleanup_interval_ms = _ms(default=3600 * 1000, validators=[MinValueValidator(1000)])
    # Dead letters (SQL): 0 turns a step off.
    dead_letter_archive_after_days = models.PositiveIntegerField(
        default=0, help_text=_("Archive open dead letters older than this many days (0: never)."))
    dead_letter_purge_after_days = models.PositiveIntegerField(
        default=90, help_text=_("Delete dead letters older than this many days (0: never)."))

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("queue type")
        # The dashboard's (queues.http.dashboard): a read-only operator group gets the
        # first only; actions there need the second.
        permissions = [
            ("view_dashboard", _("Can view the queue dashboard")),
            ("manage_jobs", _("Can act on jobs, queues and workers from the dashboard")),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, StrOrPromise] = {}
        if self.min_workers > self.max_workers:
            errors["min_workers"] = _("Minimum workers cannot exceed maximum workers.")
        if self.default_priority is not None and self.default_priority > 9:
            errors["default_priority"] = _("Priority is 0 (runs first) to 9.")
        if self.backoff_type not in dict(BACKOFF_TYPES):
            errors["backoff_type"] = _("Backoff type must be 'fixed' or 'exponential'.")
        if (self.backoff_type == "exponential" and self.backoff_delay_ms is not None
                and self.backoff_max_delay_ms < self.backoff_delay_ms):
            errors["backoff_max_delay_ms"] = _("Maximum backoff delay is below the base delay.")
        for count, duration in (("rate_limit_max", "rate_limit_duration_ms"),
                                ("group_rate_limit_max", "group_rate_limit_duration_ms")):
            if (getattr(self, count) is None) != (getattr(self, duration) is None):
                errors[duration] = _("A rate limit needs both a count and a duration.")
        if errors:
            raise ValidationError(errors)
