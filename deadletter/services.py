"""Dead-letter services: one function per operation, shared by admin, CLI and HTTP.

Every management action writes exactly one ``AuditEvent`` here, with the
actor the front end passes in (DESIGN §8.4); front ends never write audit rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from django.db import transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from deadletter.conf import settings
from deadletter.models import AuditEvent, DeadLetter
from deadletter.recording import recent_failures
from queues import registry
from queues.exceptions import CoordinatorError, DeadLetterNotFound, NotRequeueable
from queues.jobs import enqueue
from queues.options import MAX_JOB_ID_LENGTH

logger = logging.getLogger("deadletter")

# Options a requeued job keeps from the one that failed; attempts start over.
_KEPT_OPTIONS = ("priority", "attempts", "backoff", "remove_on_complete", "remove_on_fail",
                 "trace_id", "client_id")


# A bulk action's audit event lists at most this many of the job ids it touched.
AUDIT_MAX_JOB_IDS = 1000


def audit(actor: str, action: str, *, target_type: str, target_id: str | int = "",
          queue: str = "", job_id: str = "", **details: Any) -> AuditEvent:
    """Append one audit event (``job_id``: the job the action touched, if one)."""
    return AuditEvent.objects.create(actor=actor or "system", action=action,
                                     target_type=target_type, target_id=str(target_id),
                                     queue=queue, job_id=job_id, details=details)


def job_id_details(job_ids: list[str], total: int) -> dict[str, Any]:
    """The ``details`` of a bulk action: the job ids it touched, capped."""
    listed = job_ids[:AUDIT_MAX_JOB_IDS]
    return {"job_ids": listed, "job_ids_truncated": total > len(listed)}


def on_management_action(sender: Any, *, actor: str, action: str, target_type: str,
                         target_id: str, queue: str, details: dict[str, Any],
                         **_: Any) -> None:
    """Receiver of ``queues.signals.management_action``: one audit event per action."""
    audit(actor, action, target_type=target_type, target_id=target_id, queue=queue, **details)


def failed_jobs(queue: str, limit: int = 50, *, status: str | None = DeadLetter.Status.OPEN,
                offset: int = 0) -> list[DeadLetter]:
    """Dead letters of ``queue``, newest first (seed ``getFailedJobs``).

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
    """
    registry.get(queue)
    rows = DeadLetter.objects.in_queue(queue)
    if status is not None:
        rows = rows.filter(status=status)
    return list(rows.select_related("previous")[offset:offset + limit])


def get_dead_letter(dead_letter_id: int) -> DeadLetter:
    try:
        return DeadLetter.objects.get(pk=dead_letter_id)
    except (DeadLetter.DoesNotExist, ValueError, TypeError):
        raise DeadLetterNotFound(f"Dead letter {dead_letter_id!r} not found") from None


def latest_for_job(queue: str, job_id: str) -> DeadLetter:
    """The newest dead letter of a job id (the seed's HTTP requeue addresses jobs).

    Raises:
        DeadLetterNotFound: the job has no dead letter.
    """
    row = DeadLetter.objects.in_queue(queue).filter(job_id=job_id).order_by("-failed_at").first()
    if row is None:
        raise DeadLetterNotFound(f"No dead letter for job {job_id!r} in queue {queue!r}")
    return row


def requeue_job_id(root_job_id: str, generation: int) -> str:
    """``<root>:r<n>``; a root too long for that is shortened with a digest of itself,
    so the id stays within the job id limit and the same for every requeue of a row."""
    suffix = f":r{generation}"
    if len(root_job_id) + len(suffix) <= MAX_JOB_ID_LENGTH:
        return root_job_id + suffix
    digest = hashlib.sha256(root_job_id.encode()).hexdigest()[:16]
    keep = MAX_JOB_ID_LENGTH - len(suffix) - len(digest) - 1
    return f"{root_job_id[:keep]}.{digest}{suffix}"


@dataclass(frozen=True)
class RequeueResult:
    dead_letter_id: int
    job_id: str


def requeue_dead_letter(dead_letter_id: int, *, actor: str, reason: str = "") -> RequeueResult:
    """Enqueue a new job with the dead letter's payload and options; attempts start over.

    The new id is derived from the original (``<root>:r<n>``), so a second
    requeue of the same dead letter cannot create a second job. The row is
    claimed (committed) before the enqueue, so a concurrent requeue is refused
    and a fast second failure of the new job links to it; the audit event is
    written only once the new job exists.

    Raises:
        DeadLetterNotFound, NotRequeueable (already requeued or archived),
        CoordinatorError from enqueue (then the dead letter stays open and
        no audit event is written).
    """
    row = get_dead_letter(dead_letter_id)
    new_id = requeue_job_id(row.root_job_id, row.requeue_generation + 1)
    _claim_for_requeue(row, new_id, actor)
    options = {k: v for k, v in row.options.items() if k in _KEPT_OPTIONS and v is not None}
    try:
        enqueue(row.queue, row.job_name, row.payload, job_id=new_id, **options)
    except CoordinatorError:
        DeadLetter.objects.filter(pk=row.pk, requeued_as=new_id).update(
            status=DeadLetter.Status.OPEN, requeued_as="", acted_by="", acted_at=None,
            status_changed=row.status_changed)
        raise
    audit(actor, "requeue", target_type="dead_letter", target_id=row.pk, queue=row.queue,
          job_id=row.job_id, new_job_id=new_id, reason=reason)
    return RequeueResult(row.pk, new_id)


def _claim_for_requeue(row: DeadLetter, new_id: str, actor: str) -> None:
    """Mark an open dead letter requeued as ``new_id`` (a conditional update).

    Raises:
        NotRequeueable: it is not open (another requeue won, or it was archived).
    """
    now = timezone.now()
    claimed = DeadLetter.objects.filter(pk=row.pk, status=DeadLetter.Status.OPEN).update(
        status=DeadLetter.Status.REQUEUED, requeued_as=new_id, acted_by=actor,
        acted_at=now, status_changed=now)
    if not claimed:
        row.refresh_from_db(fields=["status"])
        raise NotRequeueable(
            f"Dead letter {row.pk} is {row.status}; only open dead letters can be requeued")


def archive_dead_letter(dead_letter_id: int, *, actor: str, reason: str = "") -> DeadLetter:
    """Mark an open dead letter as reviewed and not to be requeued.

    Raises:
        DeadLetterNotFound, NotRequeueable (it is not open).
    """
    row = get_dead_letter(dead_letter_id)
    now = timezone.now()
    with transaction.atomic():
        if not DeadLetter.objects.filter(pk=row.pk, status=DeadLetter.Status.OPEN).update(
                status=DeadLetter.Status.ARCHIVED, acted_by=actor, acted_at=now,
                status_changed=now):
            raise NotRequeueable(f"Dead letter {row.pk} is {row.status}, not open")
        audit(actor, "archive", target_type="dead_letter", target_id=row.pk, queue=row.queue,
              job_id=row.job_id, reason=reason)
    row.refresh_from_db()
    return row


# A group action walks its rows this many at a time, and reports at most this many errors.
GROUP_CHUNK = 500
GROUP_MAX_ERRORS = 100

GroupAction = Literal["requeue", "archive"]
_GROUP_SERVICES: dict[str, Callable[..., object]] = {
    "requeue": requeue_dead_letter, "archive": archive_dead_letter}


class GroupProgress(Protocol):
    """Told after each chunk how many rows were handled (done or refused) of ``total``."""

    def __call__(self, handled: int, total: int) -> None: ...


@dataclass(frozen=True)
class GroupResult:
    """What a group action did: rows done, rows refused, and why (the first errors)."""

    done: int
    failed: int
    errors: tuple[str, ...]


def act_on_group(queue: str, fingerprint: str, action: GroupAction, *, actor: str,
                 progress: GroupProgress | None = None) -> GroupResult:
    """Requeue or archive every open dead letter of one failure group (queue, fingerprint).

    The rows open when it starts are walked by pk, ``GROUP_CHUNK`` at a time, and each
    goes through ``requeue_dead_letter`` or ``archive_dead_letter`` (so each writes the
    audit event the admin and the API write). A row refused with a ``CoordinatorError``
    is counted and described in ``errors`` ("<pk>: <reason>"), and the walk goes on.
    ``progress(handled, total)`` is called after each chunk.

    Raises:
        ValueError: ``action`` is neither "requeue" nor "archive".
    """
    service = _GROUP_SERVICES.get(action)
    if service is None:
        raise ValueError(f"a group action is requeue or archive, not {action!r}")
    rows = DeadLetter.objects.requeueable().in_group(queue, fingerprint)
    rows = rows.filter(pk__lte=rows.aggregate(last=Max("pk"))["last"] or 0)
    total, done, failed, errors, after = rows.count(), 0, 0, list[str](), 0
    while chunk := list(rows.filter(pk__gt=after).order_by("pk")
                        .values_list("pk", flat=True)[:GROUP_CHUNK]):
        for pk in chunk:
            try:
                service(pk, actor=actor)
            except CoordinatorError as exc:
                failed += 1
                if len(errors) < GROUP_MAX_ERRORS:
                    errors.append(f"{pk}: {exc}")
                continue
            done += 1
        after = chunk[-1]
        if progress is not None:
            progress(done + failed, total)
    return GroupResult(done, failed, tuple(errors))


def purge_dead_letters(queue: str, *, older_than: datetime | timedelta | None = None,
                       actor: str, ids: list[int] | None = None) -> int:
    """Delete dead letters of ``queue`` (all, those failed before ``older_than``, or ``ids``).

    Returns how many rows were deleted. Deletes in batches, each in a transaction.

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
    """
    registry.get(queue)
    rows = DeadLetter.objects.in_queue(queue)
    if isinstance(older_than, timedelta):
        older_than = timezone.now() - older_than
    if older_than is not None:
        rows = rows.older_than(older_than)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    deleted, job_ids = 0, list[str]()
    while batch := list(rows.values_list("pk", "job_id")[: settings.PURGE_BATCH]):
        with transaction.atomic():
            deleted += DeadLetter.objects.filter(pk__in=[pk for pk, _ in batch]).delete()[0]
        if len(job_ids) < AUDIT_MAX_JOB_IDS:
            job_ids += [job_id for _, job_id in batch]
    audit(actor, "purge", target_type="queue", target_id=queue, queue=queue, deleted=deleted,
          older_than=older_than.isoformat() if older_than else None,
          **job_id_details(job_ids, deleted))
    return deleted


@dataclass(frozen=True)
class FailedJobStatistics:
    """Seed §7.2 ``FailedJobStatistics``, plus the failure-alert counts."""

    queue_name: str
    total_failed_jobs: int
    open_failed_jobs: int
    failures_by_job_type: dict[str, int]
    failures_by_error_type: dict[str, int]
    failures_by_reason: dict[str, int]
    oldest_failure: datetime | None
    recent_failure_rate: float  # failures per minute over the alert window
    recent_failures_by_job_type: dict[str, int]
    alert_threshold: int


def dead_letter_statistics(queue: str) -> FailedJobStatistics:
    """Totals and breakdowns of ``queue``'s dead letters, from the rows themselves.

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
    """
    registry.get(queue)
    rows = DeadLetter.objects.in_queue(queue)

    def breakdown(field: str, qs: Any = rows) -> dict[str, int]:
        return {row[field]: row["n"] for row in qs.values(field).annotate(n=Count("pk"))}

    window = settings.FAILURE_ALERT_WINDOW
    since = timezone.now() - timedelta(seconds=window)
    return FailedJobStatistics(
        queue_name=queue,
        total_failed_jobs=rows.count(),
        open_failed_jobs=rows.requeueable().count(),
        failures_by_job_type=breakdown("job_name"),
        failures_by_error_type=breakdown("error_type"),
        failures_by_reason=breakdown("reason"),
        oldest_failure=rows.aggregate(oldest=Min("failed_at"))["oldest"],
        recent_failure_rate=recent_failures(queue) / (window / 60),
        recent_failures_by_job_type=breakdown("job_name", rows.filter(failed_at__gte=since)),
        alert_threshold=settings.FAILURE_ALERT_THRESHOLD,
    )
