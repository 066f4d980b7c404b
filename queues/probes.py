"""Process probes and the metrics endpoint (seed §12.3, port 3000); open, no token.

``GET /health`` answers while the process runs (liveness). ``GET /ready``
answers 200 only when Redis and the database answer and every migration is
applied, else 503 naming the failing part. ``GET /metrics`` serves
``queues.metrics`` (behind a ``queues:view`` token when METRICS_REQUIRE_TOKEN
is set). Queue health is part of the JWT ops API (``queues.api``). Errors
are JSON with a 4xx/503 status, never a 500.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST

from queues import auth, metrics, store
from queues.conf import settings
from queues.exceptions import BackendUnavailable

View = Callable[..., HttpResponse]


@dataclass(frozen=True)
class Readiness:
    """Each part checked (redis, database, migrations): ``ok`` or what is wrong."""

    checks: dict[str, str]

    @property
    def failing(self) -> list[str]:
        return [part for part, result in self.checks.items() if result != "ok"]

    @property
    def ready(self) -> bool:
        return not self.failing


def readiness() -> Readiness:
    """Whether this process can serve: Redis answers, the database answers and is migrated."""
    checks = {"redis": _check_redis(), "database": _check_database()}
    checks["migrations"] = (_check_migrations() if checks["database"] == "ok"
                            else "not checked: the database is unreachable")
    return Readiness(checks)


def _check_redis() -> str:
    try:
        with store.backend():
            store.client().ping()
    except (BackendUnavailable, redis.RedisError) as exc:
        return str(exc)
    return "ok"


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"database unreachable: {exc}"
    return "ok"


def _check_migrations() -> str:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return f"cannot read applied migrations: {exc}"
    if not plan:
        return "ok"
    pending = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan)
    return f"{len(plan)} unapplied: {pending}"


def _may_scrape(request: HttpRequest) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    principal = auth.verify(token) if scheme.lower() == "bearer" else None
    return principal is not None and principal.can("view")


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def get_only(view: View) -> View:
    """Answer GET and HEAD; anything else gets a JSON 405. No CSRF check (nothing changes)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = _error(405, f"{request.method} is not allowed here; use GET")
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


@get_only
def liveness_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@get_only
def readiness_view(request: HttpRequest) -> HttpResponse:
    report = readiness()
    body = {"status": "ready" if report.ready else "unavailable",
            "failing": report.failing, "checks": report.checks}
    return JsonResponse(body, status=200 if report.ready else 503)


@get_only
def metrics_view(request: HttpRequest) -> HttpResponse:
    if settings.METRICS_REQUIRE_TOKEN and not _may_scrape(request):
        return _error(401, "a bearer token with scope queues:view is required")
    try:
        body = metrics.render()
    except BackendUnavailable as exc:
        return _error(503, str(exc))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
