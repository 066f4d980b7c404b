"""Dead letters (jobs that failed for good) and the audit trail, in SQL for people to review."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from deadletter import fingerprint as fingerprints


class DeadLetterQuerySet(models.QuerySet["DeadLetter"]):
    def requeueable(self) -> DeadLetterQuerySet:
        return self.filter(status=DeadLetter.Status.OPEN)

    def older_than(self, when: datetime) -> DeadLetterQuerySet:
        return self.filter(failed_at__lt=when)

    def in_queue(self, queue: str) -> DeadLetterQuerySet:
        return self.filter(queue=queue)

    def in_group(self, queue: str, fingerprint: str) -> DeadLetterQuerySet:
        """The dead letters of one failure group (``deadletter.fingerprint``)."""
        return self.filter(queue=queue, fingerprint=fingerprint)


class DeadLetter(models.Model):
    """One terminal failure of one job (seed §7.2 ``FailedJob``)."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        REQUEUED = "requeued", _("requeued")
        ARCHIVED = "archived", _("archived")

    class Reason(models.TextChoices):
        MAX_ATTEMPTS = "max_attempts_exceeded", _("attempts exhausted")
        NON_RETRYABLE = "non_retryable_error", _("non-retryable error")
        EXPIRED = "expired", _("expired (MAX_JOB_AGE or its deadline)")
        STALLED = "stalled", _("stalled too often")
        TIMEOUT = "timeout", _("time limit exceeded on the last attempt")
        CHILD_FAILED = "child_failed", _("a child of its flow failed (queues.jobs.flows)")

    # "<queue>:<job id>:<failed-at ms>": one row per terminal failure, even if
    # the failure is delivered twice (a retried write after a DB outage).
    failure_key = models.CharField(max_length=400, unique=True, editable=False)
    job_id = models.CharField(max_length=256, db_index=True)
    queue = models.CharField(max_length=64, db_index=True)
    job_name = models.CharField(max_length=128, db_index=True)
    payload = models.JSONField()
    options = models.JSONField(default=dict)
    error_type = models.CharField(max_length=128, db_index=True)
    error_message = models.TextField(blank=True)
    # The failure group (``deadletter.fingerprint``): error type and message with
    # their data normalised away; the key groups and indexes, the text is shown.
    fingerprint = models.CharField(max_length=fingerprints.KEY_LENGTH, db_index=True,
                                   blank=True, editable=False)
    fingerprint_text = models.CharField(max_length=fingerprints.TEXT_LENGTH, blank=True,
                                        editable=False)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=32, choices=Reason.choices, db_index=True)
    failed_at = models.DateTimeField(db_index=True)
    trace_id = models.CharField(max_length=128, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN,
                              db_index=True)
    status_changed = models.DateTimeField(default=timezone.now)
    requeued_as = models.CharField(max_length=300, blank=True)
    # The dead letter whose requeue produced this job (its lineage).
    previous = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="next")
    root_job_id = models.CharField(max_length=256, db_index=True)
    requeue_generation = models.PositiveIntegerField(default=0)
    acted_by = models.CharField(max_length=150, blank=True)
    acted_at = models.DateTimeField(null=True, blank=True)

    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    objects = DeadLetterQuerySet.as_manager()

    class Meta:
        ordering = ["-failed_at"]
        indexes = [models.Index(fields=["queue", "status", "failed_at"]),
                   # The Failures page groups one status by (queue, fingerprint).
                   models.Index(fields=["status", "queue", "fingerprint"],
                                name="deadletter_group_idx")]
        permissions = [
            ("requeue_deadletter", "Can requeue dead letters"),
            ("archive_deadletter", "Can archive dead letters"),
            ("purge_deadletter", "Can purge dead letters"),
        ]

    def __str__(self) -> str:
        return f"{self.queue}/{self.job_id} ({self.reason})"


class AuditEvent(models.Model):
    """One management action: who did what to which queue, job or dead letter. Append-only."""

    actor = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32, db_index=True)
    target_id = models.CharField(max_length=300, blank=True)
    queue = models.CharField(max_length=64, blank=True, db_index=True)
    # The job an action touched (a dead letter's job, a cancelled job); bulk actions
    # list theirs in ``details["job_ids"]``.
    job_id = models.CharField(max_length=300, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target_type}:{self.target_id}"
