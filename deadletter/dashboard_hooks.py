"""What dead letters add to the dashboard's job views (``queues`` cannot import them).

"Retry" of a failed job: the requeue of its newest dead letter.
Registered with ``queues.ops.bulk`` at start-up (``DeadletterConfig.ready``), so the
queue page offers it on the failed tab, for ticked rows and for every job matching a
filter, and the job page offers it on a failed job. It needs the permission the
admin's requeue needs (``deadletter.requeue_deadletter``).

Links on a job's page: its dead letters, the job each was requeued as, and the job
it was requeued from.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from deadletter import services
from deadletter.models import DeadLetter
from queues.http import dashboard
from queues.jobs import JobInfo
from queues.ops import bulk

LINKED = 5  # dead letters of one job linked from its page, newest first


def retry_failed_job(queue: str, job_id: str, actor: str, params: dict[str, Any]) -> None:
    """Requeue the newest dead letter of ``job_id`` (audited as its ``requeue``).

    Raises:
        DeadLetterNotFound: the job has no dead letter.
        NotRequeueable: its newest dead letter was requeued or archived already.
    """
    services.requeue_dead_letter(services.latest_for_job(queue, job_id).pk, actor=actor,
                                 reason="retried from the dashboard")


RETRY = bulk.Action("retry", "Retry", "retried", frozenset({"failed"}),
                    "deadletter.requeue_deadletter", retry_failed_job)


def register() -> None:
    bulk.register(RETRY)
    dashboard.add_job_links(job_links)


def job_links(info: JobInfo) -> list[tuple[str, str]]:
    """A job's dead letters (newest first, with the job each was requeued as) and the
    dead letter it was itself requeued from, as (label, URL) for its dashboard page."""
    links = []
    for row in DeadLetter.objects.in_queue(info.queue).filter(job_id=info.id)[:LINKED]:
        links.append((f"Dead letter #{row.pk} ({row.get_status_display()})",
                      reverse("admin:deadletter_deadletter_change", args=[row.pk])))
        if row.requeued_as:
            links.append((f"Requeued as job {row.requeued_as}",
                          reverse("dashboard-job", args=[row.queue, row.requeued_as])))
    source = DeadLetter.objects.in_queue(info.queue).filter(requeued_as=info.id).first()
    if source is not None:
        links.append((f"Requeued from job {source.job_id}",
                      reverse("dashboard-job", args=[source.queue, source.job_id])))
        links.append((f"whose dead letter is #{source.pk}",
                      reverse("admin:deadletter_deadletter_change", args=[source.pk])))
    return links
