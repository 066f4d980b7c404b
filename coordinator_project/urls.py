"""URL routes: admin (and its dashboard), the open probes, /metrics, the JWT ops API (seed §12).

Django's 400 and 404 answers are JSON outside admin (``coordinator_project.errors``).
"""

from django.contrib import admin
from django.urls import include, path

from coordinator_project.api import api
from deadletter import dashboard as deadletter_dashboard
from queues.http import dashboard, probes
from workers import dashboard as workers_dashboard

urlpatterns = [
    # The dashboard lives inside admin (its login, its chrome), before admin's catch-all.
    path("admin/dashboard/workers/", include(workers_dashboard.urlpatterns)),
    path("admin/dashboard/recurring/", include("queues.http.recurring_page")),
    path("admin/dashboard/", include(dashboard.urlpatterns)),
    path("admin/dashboard/", include(deadletter_dashboard.urlpatterns)),
    path("admin/", admin.site.urls),
    path("health", probes.liveness_view, name="health"),
    path("ready", probes.readiness_view, name="ready"),
    path("metrics", probes.metrics_view, name="metrics"),
    path("", api.urls),
]

handler400 = "coordinator_project.errors.bad_request"
handler404 = "coordinator_project.errors.not_found"
