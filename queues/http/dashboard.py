"""The dashboard inside Django admin (DESIGN §8.22): the overview of every queue type,
each queue's page with its jobs per state, and each job's page.

Pages are server-rendered admin templates (same login, same chrome); the live parts
are htmx fragments that the page polls while its tab is visible, and the charts
draw JSON from ``overview_series`` with the Chart.js file served from
``queues/static/queues/vendor``. Every figure comes from the service functions the
ops API and the CLI use (``queues.ops.health``, ``queues.ops.stats``); no page
scans a queue.

Permissions (``QueueType.Meta.permissions``): ``queues.view_dashboard`` for the
pages; admin's login and ``is_staff`` come first (``admin.site.admin_view``).
A staff user without the permission gets 403.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.cache import never_cache

from queues import jobs, registry, store
from queues.exceptions import (
    BackendUnavailable,
    JobNotFound,
    JobValidationError,
    QueueTypeNotFound,
)
from queues.ops import browse, health, manager, stats
from queues.store import workers as worker_store
from queues.store.queue_state import STATES

VIEW = "queues.view_dashboard"
REFRESH_SECONDS = 3  # the overview's table; the charts refresh every 10 s (dashboard.js)

View = Callable[..., HttpResponse]


def requires(permission: str) -> Callable[[View], View]:
    """Admin's login and staff check, then ``permission`` (403 without it)."""
    def decorate(view: View) -> View:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perm(permission):
                raise PermissionDenied(f"the dashboard needs the {permission} permission")
            return view(request, *args, **kwargs)
        return admin.site.admin_view(never_cache(checked))
    return decorate


@dataclass(frozen=True)
class QueueRow:
    """One queue type on the overview."""

    name: str
    display_name: str
    counts: list[int]  # in the order of ``STATES``
    paused: bool
    workers: int
    processes: int
    processing_rate: float  # jobs per minute
    error_rate: float  # 0-1
    average_wait_ms: float
    status: str
    issues: list[str]


def queue_rows() -> list[QueueRow]:
    """Every registered queue type's row (one health check per queue)."""
    return [queue_row(name) for name in manager.list_queues()]


def queue_row(name: str) -> QueueRow:
    """One queue type's figures, from its health check.

    Raises:
        QueueTypeNotFound: ``name`` is not registered.
    """
    spec = registry.get(name)
    checked = health.queue_health(name)
    m = checked.metrics
    issues = [issue.message for issue in checked.issues]
    try:
        processes = int(sum(slots for *_, slots in worker_store.live_resources(name)))
    except BackendUnavailable:
        processes = 0
    return QueueRow(
        name=name, display_name=spec.display_name or name,
        counts=[m.job_counts.get(state, 0) for state in STATES] if m else [],
        paused=bool(m and m.is_paused), workers=m.active_workers if m else 0,
        processes=processes, processing_rate=m.processing_rate if m else 0.0,
        error_rate=m.error_rate if m else 0.0,
        average_wait_ms=m.average_wait_time if m else 0.0,
        status=checked.status, issues=issues)


def render(request: HttpRequest, template: str, title: str, **context: Any) -> TemplateResponse:
    """An admin page of the dashboard: admin's context (no app sidebar), the title, the states."""
    return TemplateResponse(request, template, {
        **admin.site.each_context(request), "is_nav_sidebar_enabled": False,
        "title": title, "states": STATES,
        "refresh_seconds": REFRESH_SECONDS, **context})


@requires(VIEW)
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "admin/dashboard/overview.html", "Queues", rows=queue_rows())


@requires(VIEW)
def overview_rows(request: HttpRequest) -> HttpResponse:
    """The overview's table alone, for htmx to swap in."""
    return render(request, "admin/dashboard/_overview_rows.html", "Queues", rows=queue_rows())


@requires(VIEW)
def overview_series(request: HttpRequest) -> HttpResponse:
    """Completed and failed per minute (last hour) and per hour (last 24 h), per queue
    and for all queues together, as JSON for the charts."""
    now, queues = store.now_ms(), {}
    try:
        for name in manager.list_queues():
            queues[name] = {"minute": _series(stats.per_minute(name, now_ms=now)),
                            "hour": _series(stats.per_hour(name, now_ms=now))}
    except BackendUnavailable as exc:
        return JsonResponse({"error": "backend_unavailable", "detail": str(exc)}, status=503)
    return JsonResponse({"queues": queues, "all": {
        span: _sum([queues[name][span] for name in queues]) for span in ("minute", "hour")}})


@requires(VIEW)
def queue_page(request: HttpRequest, name: str) -> HttpResponse:
    """One queue: its figures, and its jobs in one state a page at a time."""
    try:
        row = queue_row(name)
    except QueueTypeNotFound as exc:
        raise Http404(str(exc)) from None
    state = request.GET.get("state", "waiting")
    text, job_type = request.GET.get("q", "").strip(), request.GET.get("type", "").strip()
    search = None
    try:
        page = browse.jobs_page(name, state, _page_number(request))
        if text or job_type:
            search = browse.search_jobs(name, state, text=text, job_type=job_type)
    except JobValidationError as exc:
        return HttpResponseBadRequest(str(exc))
    counts: list[int | None] = list(row.counts) or [None] * len(STATES)  # None: unknown
    return render(request, "admin/dashboard/queue.html", f"Queue {name}", row=row,
                 jobs=page, search=search, q=text, job_type=job_type,
                 shown=search.rows if search else page.rows,
                 tabs=list(zip(STATES, counts, strict=True)))


@requires(VIEW)
def job_page(request: HttpRequest, name: str, job_id: str) -> HttpResponse:
    """One job: payload, options, times, progress, log, result or error with traceback."""
    try:
        info = jobs.get_job(name, job_id)
    except (QueueTypeNotFound, JobNotFound) as exc:
        raise Http404(str(exc)) from None
    return render(request, "admin/dashboard/job.html", f"Job {job_id}", job=info,
                 payload=json.dumps(info.data, indent=2, ensure_ascii=False),
                 options=json.dumps(info.options, indent=2, ensure_ascii=False),
                 result=json.dumps(info.result, indent=2, ensure_ascii=False))


def _page_number(request: HttpRequest) -> int:
    try:
        return int(request.GET.get("page", "1"))
    except ValueError:
        return 0  # refused as "pages count from 1"


def _series(series: stats.Series) -> dict[str, Any]:
    return {"starts_ms": series.starts_ms, "completed": series.completed,
            "failed": series.failed}


def _sum(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if not parts:
        return {"starts_ms": [], "completed": [], "failed": []}
    return {"starts_ms": parts[0]["starts_ms"],
            **{kind: [sum(values) for values in zip(*(p[kind] for p in parts), strict=True)]
               for kind in ("completed", "failed")}}


urlpatterns = [
    path("", overview, name="dashboard-overview"),
    path("overview/rows", overview_rows, name="dashboard-overview-rows"),
    path("overview/series", overview_series, name="dashboard-overview-series"),
    path("queues/<str:name>/", queue_page, name="dashboard-queue"),
    path("queues/<str:name>/jobs/<str:job_id>/", job_page, name="dashboard-job"),
]
