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

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from queues import jobs, registry, store
from queues.exceptions import (
    BackendUnavailable,
    JobNotFound,
    JobValidationError,
    QueueTypeNotFound,
)
from queues.jobs import flows
from queues.ops import browse, bulk, health, manager, stats
from queues.store import flows as flow_store
from queues.store import gate
from queues.store import workers as worker_store
from queues.store.queue_state import STATES

VIEW = "queues.view_dashboard"
MANAGE = bulk.MANAGE  # pause, resume, and the job actions of queues (deadletter's: its own)
MAX_PICKED = 500  # ticked jobs one request acts on; more: "every matching job"
# a job page refreshes while in one
LIVE_STATES = {"waiting", "delayed", "active", "paused", "rate_limited", "concurrency_limited",
               "waiting-children"}
FLOW_SHOWN = 200  # jobs of a flow a job page lists
REFRESH_SECONDS = 3  # the overview's table; the charts refresh every 10 s (dashboard.js)

View = Callable[..., HttpResponse]


def requires(permission: str) -> Callable[[View], View]:
    """Admin's login and staff check, then ``permission`` (403 without it); a page
    whose Redis is unreachable says so with a 503 instead of failing."""
    def decorate(view: View) -> View:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perm(permission):
                raise PermissionDenied(f"the dashboard needs the {permission} permission")
            try:
                return view(request, *args, **kwargs)
            except BackendUnavailable as exc:
                return unavailable(request, exc)
        return admin.site.admin_view(never_cache(checked))
    return decorate


def acts(permission: str) -> Callable[[View], View]:
    """An action: what ``requires`` checks, then POST only (405 otherwise). Django's
    CSRF middleware checks the form's token before the view runs."""
    def decorate(view: View) -> View:
        return requires(permission)(require_POST(view))
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


def acted(request: HttpRequest, message: str, back: str, *, level: int = messages.SUCCESS
          ) -> HttpResponseRedirect:
    """After an action: say what it did (admin's messages) and go back to ``back`` (303)."""
    messages.add_message(request, level, message)
    reply = HttpResponseRedirect(back)
    reply.status_code = 303
    return reply


def render(request: HttpRequest, template: str, title: str, **context: Any) -> TemplateResponse:
    """An admin page of the dashboard: admin's context (no app sidebar), the title, the states."""
    return TemplateResponse(request, template, {
        **admin.site.each_context(request), "is_nav_sidebar_enabled": False,
        "title": title, "states": STATES,
        "refresh_seconds": REFRESH_SECONDS, **context})


def unavailable(request: HttpRequest, exc: BackendUnavailable) -> TemplateResponse:
    """The page in place of one that could not read Redis (503); nothing was changed."""
    reply = render(request, "admin/dashboard/unavailable.html", "Redis is unreachable",
                   detail=str(exc))
    reply.status_code = 503
    return reply


def refused(message: str) -> HttpResponseBadRequest:
    """A 400 that says why, as plain text: the sentence may quote what the client sent."""
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


def back_to(request: HttpRequest, default: str) -> str:
    """Where an action returns: the form's ``back`` if it is a path of this site."""
    back = request.POST.get("back", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                require_https=request.is_secure()):
        return back
    return default


# What other apps add to a job's page: (label, URL) links for a job (deadletter: the
# job's dead letter, and the job it was requeued as or from).
JobLinks = Callable[[jobs.JobInfo], list[tuple[str, str]]]
JOB_LINKS: list[JobLinks] = []


def add_job_links(provider: JobLinks) -> None:
    """Show ``provider``'s links on every job's page."""
    JOB_LINKS.append(provider)


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
        return refused(str(exc))
    counts: list[int | None] = list(row.counts) or [None] * len(STATES)  # None: unknown
    return render(request, "admin/dashboard/queue.html", f"Queue {name}", row=row,
                 jobs=page, search=search, q=text, job_type=job_type,
                 shown=search.rows if search else page.rows,
                 tabs=list(zip(STATES, counts, strict=True)),
                 actions=_offered(request, state), may_manage=request.user.has_perm(MANAGE))


@requires(VIEW)
def job_page(request: HttpRequest, name: str, job_id: str) -> HttpResponse:
    """One job: payload, options, times, progress, log, result or error with traceback."""
    try:
        info = jobs.get_job(name, job_id)
    except (QueueTypeNotFound, JobNotFound) as exc:
        raise Http404(str(exc)) from None
    # a held job's state names the limit; its tab and actions are those of 'limited'
    tab = "limited" if info.state in gate.REASONS else info.state
    flow = flows.get_flow(name, job_id, limit=FLOW_SHOWN) if (
        info.parent or flow_store.has_children(name, job_id)) else None
    return render(request, "admin/dashboard/job.html", f"Job {job_id}", job=info, tab=tab,
                 flow=flow,
                 payload=json.dumps(info.data, indent=2, ensure_ascii=False),
                 options=json.dumps(info.options, indent=2, ensure_ascii=False),
                 result=json.dumps(info.result, indent=2, ensure_ascii=False),
                 actions=_offered(request, tab),
                 links=[link for provider in JOB_LINKS for link in provider(info)],
                 live=info.state in LIVE_STATES)


@acts(VIEW)
def act(request: HttpRequest, name: str) -> HttpResponse:
    """An action on the ticked jobs of a tab (``ids``, at most ``MAX_PICKED``) or, with
    ``all=1``, on every job of the tab matching its filter (``state``, ``q``, ``type``)
    as a maintenance job, whose page this then shows. The action's own permission is
    checked (403 without it); a refused action changes nothing and says why."""
    try:
        registry.get(name)
        chosen = bulk.action(request.POST.get("action", ""))
    except QueueTypeNotFound as exc:
        raise Http404(str(exc)) from None
    except JobValidationError as exc:
        return refused(str(exc))
    if not request.user.has_perm(chosen.permission):
        raise PermissionDenied(f"{chosen.label!r} needs the {chosen.permission} permission")
    back = back_to(request, reverse("dashboard-queue", args=[name]))
    actor = request.user.get_username()
    params = {"priority": request.POST.get("priority", "")} if chosen.name == "priority" else {}
    ids = request.POST.getlist("ids")
    if len(ids) > MAX_PICKED:
        return refused(f"at most {MAX_PICKED} ticked jobs at once; "
                                      "act on every matching job instead")
    try:
        if request.POST.get("all") == "1":
            handle = bulk.start(name, chosen.name, state=request.POST.get("state", ""),
                                text=request.POST.get("q", "").strip(),
                                job_type=request.POST.get("type", "").strip(), actor=actor,
                                params=params)
            return acted(request, f"{chosen.label}: every matching job, as maintenance job "
                         f"{handle.id}; its progress is below.",
                         reverse("dashboard-job", args=["maintenance", handle.id]))
        if not ids:
            return acted(request, "No job was ticked; nothing was done.", back,
                         level=messages.WARNING)
        result = bulk.act(name, chosen.name, ids, actor=actor, params=params)
    except JobValidationError as exc:
        return acted(request, f"Nothing was done: {exc}", back, level=messages.ERROR)
    return acted(request, result.report(), back,
                 level=messages.SUCCESS if result.done else messages.WARNING)


@acts(MANAGE)
def pause_queue(request: HttpRequest, name: str) -> HttpResponse:
    """Pause a queue on every worker (running jobs finish; nothing new starts)."""
    try:
        manager.pause_queue(name, actor=request.user.get_username())
    except QueueTypeNotFound as exc:
        raise Http404(str(exc)) from None
    return acted(request, f"Paused {name}: running jobs finish, no new job starts.",
                 back_to(request, reverse("dashboard-queue", args=[name])))


@acts(MANAGE)
def resume_queue(request: HttpRequest, name: str) -> HttpResponse:
    """Resume a queue and release the jobs parked while it was paused."""
    try:
        released = manager.resume_queue(name, actor=request.user.get_username())
    except QueueTypeNotFound as exc:
        raise Http404(str(exc)) from None
    return acted(request, f"Resumed {name}; {released} parked job{'' if released == 1 else 's'} "
                 "released.", back_to(request, reverse("dashboard-queue", args=[name])))


def _offered(request: HttpRequest, state: str) -> list[bulk.Action]:
    """The actions of ``state`` this user may take."""
    return [a for a in bulk.offered(state) if request.user.has_perm(a.permission)]


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
    path("queues/<str:name>/act", act, name="dashboard-act"),
    path("queues/<str:name>/pause", pause_queue, name="dashboard-pause-queue"),
    path("queues/<str:name>/resume", resume_queue, name="dashboard-resume-queue"),
]
