"""URL routes: Django admin, the probes and the read-only observability views (seed §12.3)."""

from django.contrib import admin
from django.urls import path

from queues import probes

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", probes.liveness_view, name="health"),
    path("ready", probes.readiness_view, name="ready"),
    path("metrics", probes.metrics_view, name="metrics"),
    path("queues/<str:name>/health", probes.queue_health_view, name="queue-health"),
]
