"""The dashboard's Workers page (the rest of the dashboard: ``queues.http.dashboard``).

Each worker from its heartbeat (``workers.presence.list_workers``): host and pid,
queues, pool and processes, running jobs, memory and CPU, heartbeat age,
processed and failed, and status (active, paused, stuck, stale), with pause and resume;
and per queue the processes serving it against the processes wanted
(``scale_target``, set by ``scale_workers`` or the autoscaler), with a form that
scales it. Viewing needs ``queues.view_dashboard``; pausing, resuming and scaling
need ``queues.manage_jobs``, the same actions as the ops API and the CLI
(``presence.pause_worker``/``resume_worker``, ``scaling.scale_workers``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse

from queues import store
from queues.exceptions import ConfigurationError, QueueTypeNotFound, WorkerNotFound
from queues.http.dashboard import MANAGE, VIEW, acted, acts, back_to, render, requires
from queues.ops import manager
from queues.store import workers as worker_store
from workers import presence, scaling


@dataclass(frozen=True)
class QueueProcesses:
    """One queue on the Workers page: processes of its live workers, and the wanted total."""

    name: str
    actual: int
    wanted: int | None  # None: never set


@requires(VIEW)
def workers_page(request: HttpRequest) -> HttpResponse:
    now = store.now_ms()
    rows = [(worker, (now - int(worker.last_activity.timestamp() * 1000)) / 1000)
            for worker in sorted(presence.list_workers(), key=lambda w: w.id)]
    processes = [QueueProcesses(name, int(sum(slots for *_, slots in
                                              worker_store.live_resources(name))),
                                worker_store.queue_target(name))
                 for name in manager.list_queues()]
    return render(request, "admin/dashboard/workers.html", "Workers", rows=rows,
                  processes=processes, may_manage=request.user.has_perm(MANAGE))


@acts(MANAGE)
def pause_worker(request: HttpRequest, worker_id: str) -> HttpResponse:
    """Stop one worker taking new jobs (its running jobs finish)."""
    return _set_paused(request, worker_id, paused=True)


@acts(MANAGE)
def resume_worker(request: HttpRequest, worker_id: str) -> HttpResponse:
    return _set_paused(request, worker_id, paused=False)


def _set_paused(request: HttpRequest, worker_id: str, *, paused: bool) -> HttpResponse:
    change = presence.pause_worker if paused else presence.resume_worker
    try:
        status = change(worker_id, actor=request.user.get_username())
    except WorkerNotFound as exc:
        raise Http404(str(exc)) from None
    return acted(request, f"Worker {worker_id} is {status.status}.",
                 back_to(request, reverse("dashboard-workers")))


@acts(MANAGE)
def scale_queue(request: HttpRequest, name: str) -> HttpResponse:
    """Set the processes serving a queue across its live workers (``scale_workers``)."""
    back = back_to(request, reverse("dashboard-workers"))
    try:
        target = int(request.POST.get("target", ""))
        result = scaling.scale_workers(name, target, actor=request.user.get_username())
    except QueueTypeNotFound as exc:
        raise Http404(str(exc)) from None
    except (ValueError, ConfigurationError) as exc:
        reason = str(exc) if isinstance(exc, ConfigurationError) else "a whole number"
        return acted(request, f"Nothing was scaled: the target must be {reason}.", back,
                     level=messages.ERROR)
    short = result.target_count - result.actual_count
    return acted(request, f"{name}: {result.previous_count} → {result.actual_count} "
                 f"process{'' if result.actual_count == 1 else 'es'} (wanted {target})"
                 + (f"; the live workers cannot host {short} more: the wanted total is kept "
                    "for an external scaler" if short > 0 else "") + ".", back,
                 level=messages.SUCCESS if short <= 0 else messages.WARNING)


urlpatterns = [
    path("", workers_page, name="dashboard-workers"),
    path("scale/<str:name>", scale_queue, name="dashboard-scale-queue"),
    path("<str:worker_id>/pause", pause_worker, name="dashboard-pause-worker"),
    path("<str:worker_id>/resume", resume_worker, name="dashboard-resume-worker"),
]
