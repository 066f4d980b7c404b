"""The dashboard's Recurring page (the rest of the dashboard: ``queues.http.dashboard``).

Each recurring job (``queues.ops.scheduling.list_recurring``, optionally of one queue):
queue, job type, payload, cron expression and timezone, its next three runs in that
timezone, runs so far of ``max_runs``, enabled, and the job its latest run created.
Viewing needs ``queues.view_dashboard``; enabling and disabling (POST, with Django's
CSRF token) need ``queues.manage_jobs`` and call ``scheduling.set_recurring_enabled``,
the service the ops API and the CLI call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse

from queues import jobs, registry
from queues.exceptions import InvalidJobState, JobNotFound, QueueTypeNotFound
from queues.http.dashboard import MANAGE, VIEW, acted, acts, back_to, refused, render, requires
from queues.ops import manager, scheduling

UPCOMING = 3  # fire times shown per schedule


@dataclass(frozen=True)
class RecurringRow:
    """One recurring job on the page."""

    job: scheduling.RepeatableJob
    payload: str  # compact JSON
    upcoming: list[datetime]  # in the schedule's timezone
    finished: str  # why it will never run again; "" while it can
    last_state: str | None  # of the latest run's job: None before a run, "removed" if gone


def recurring_rows(queue: str | None) -> list[RecurringRow]:
    """Every recurring job's row (of ``queue``, if given), in id order."""
    return [RecurringRow(job=job, payload=json.dumps(job.data, ensure_ascii=False),
                         upcoming=scheduling.upcoming_runs(job, UPCOMING),
                         finished=scheduling.finished_reason(job),
                         last_state=_state(job.queue, job.last_job_id))
            for job in scheduling.list_recurring(queue)]


def _state(queue: str, job_id: str | None) -> str | None:
    """The state of job ``job_id`` (None for no job; "removed" once its record is gone)."""
    if job_id is None:
        return None
    try:
        return jobs.get_job(queue, job_id).state
    except (JobNotFound, QueueTypeNotFound):
        return "removed"  # kept no longer (remove_on_complete, cleaned, queue destroyed)


@requires(VIEW)
def recurring_page(request: HttpRequest) -> HttpResponse:
    """The recurring jobs, of the queue in ``?queue=`` if given (400 for an unknown one)."""
    queue = request.GET.get("queue", "").strip() or None
    if queue is not None:
        try:
            registry.get(queue)
        except QueueTypeNotFound as exc:
            return refused(f"{exc}; choose one of the list.")
    return render(request, "admin/dashboard/recurring.html", "Recurring jobs",
                  rows=recurring_rows(queue), queue=queue, queues=manager.list_queues(),
                  can_manage=request.user.has_perm(MANAGE))


@acts(MANAGE)
def enable(request: HttpRequest, recurring_id: str) -> HttpResponse:
    """Let beat fire the job again, from its next tick (404 for an unknown id)."""
    return _switch(request, recurring_id, enabled=True)


@acts(MANAGE)
def disable(request: HttpRequest, recurring_id: str) -> HttpResponse:
    """Stop beat firing the job (404 for an unknown id)."""
    return _switch(request, recurring_id, enabled=False)


def _switch(request: HttpRequest, recurring_id: str, *, enabled: bool) -> HttpResponse:
    """Set the job's state, say so, and go back to the page the form was on."""
    back = back_to(request, reverse("dashboard-recurring"))
    try:
        job = scheduling.set_recurring_enabled(recurring_id, enabled,
                                               actor=request.user.get_username())
    except JobNotFound:
        raise Http404(f"No recurring job has the id {recurring_id!r}.") from None
    except InvalidJobState as exc:
        return acted(request, str(exc), back, level=messages.ERROR)
    done = "Enabled" if enabled else "Disabled"
    return acted(request, f"{done} recurring job {job.id} ({job.name} on {job.queue}).", back)


urlpatterns = [
    path("", recurring_page, name="dashboard-recurring"),
    path("<str:recurring_id>/enable", enable, name="dashboard-recurring-enable"),
    path("<str:recurring_id>/disable", disable, name="dashboard-recurring-disable"),
]
