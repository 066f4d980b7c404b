"""URL routes: admin, the open probes, /metrics, and the JWT-protected ops API (seed §12).

Django's 400 and 404 answers are JSON outside admin (``coordinator_project.errors``).
"""

from django.contrib import admin
from django.urls import path

from coordinator_project.api import api
from queues.http import probes

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", probes.liveness_view, name="health"),
    path("ready", probes.readiness_view, name="ready"),
    path("metrics", probes.metrics_view, name="metrics"),
    path("", api.urls),
]

handler400 = "coordinator_project.errors.bad_request"
handler404 = "coordinator_project.errors.not_found"
