"""The dashboard's Workers page (the rest of the dashboard: ``queues.http.dashboard``).

Each worker from its heartbeat (``workers.presence.list_workers``): host and pid,
queues, pool and processes, running jobs, memory and CPU, heartbeat age,
processed and failed, and status (active, paused, stale). Same permission as the
other pages (``queues.view_dashboard``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from queues import store
from queues.http.dashboard import VIEW, render, requires
from workers import presence


@requires(VIEW)
def workers_page(request: HttpRequest) -> HttpResponse:
    now = store.now_ms()
    rows = [(worker, (now - int(worker.last_activity.timestamp() * 1000)) / 1000)
            for worker in sorted(presence.list_workers(), key=lambda w: w.id)]
    return render(request, "admin/dashboard/workers.html", "Workers", rows=rows)
