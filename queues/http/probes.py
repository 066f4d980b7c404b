"""Process probes and the metrics endpoint (seed §12.3, port 3000); open, no token.

``GET /health`` answers while the process runs (liveness). ``GET /ready``
answers 200 only when Redis and the database answer and every migration is
applied, else 503 naming the failing part, within a second even when a backend
hangs. ``GET /metrics`` serves
``queues.ops.metrics`` (behind a ``queues:view`` token when METRICS_REQUIRE_TOKEN
is set). Queue health is part of the JWT ops API (``queues.http.api``). Errors
are JSON with a 4xx/503 status, never a 500.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import load_backend
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST

from queues import store
from queues.conf import settings
from queues.exceptions import BackendUnavailable
from queues.http import auth
from queues.ops import metrics

View = Callable[..., HttpResponse]

# /ready answers within a second (a usual load-balancer or Kubernetes probe
# timeout) even when Redis or the database hangs instead of refusing.
READY_DEADLINE_S = 0.75
REDIS_TIMEOUT_S = 0.5
# libpq's smallest connect_timeout. It ends the connection attempt of a probe that
# timed out when the server took the TCP connection but never answers (a stopped
# postmaster), so such threads do not pile up while the server hangs.
PG_CONNECT_TIMEOUT_S = 2
PARTS = ("redis", "database", "migrations")
_NAMES = {"redis": "Redis", "database": "the database", "migrations": "the migration check"}


@dataclass(frozen=True)
class Readiness:
    """Each part checked (redis, database, migrations): ``ok`` or what is wrong."""

    checks: dict[str, str]
    redis_role: str = "unknown"  # master, slave: the Redis this process talks to

    @property
    def failing(self) -> list[str]:
        return [part for part, result in self.checks.items() if result != "ok"]

    @property
    def ready(self) -> bool:
        return not self.failing


def readiness(deadline_s: float = READY_DEADLINE_S) -> Readiness:
    """Whether this process can serve: Redis answers, the database answers and is migrated.

    Returns within ``deadline_s`` whatever the backends do: each check runs in
    its own daemon thread, and a part that has not answered by then is reported
    as timed out (its thread finishes on its own).
    """
    results: dict[str, str] = {}
    threads = [_spawn(_check_redis, results), _spawn(_check_database, results)]
    end = time.monotonic() + deadline_s
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    found = dict(results)  # a snapshot: a late thread may still write
    return Readiness({part: found.get(part) or _missing(part, found, deadline_s)
                      for part in PARTS}, redis_role=found.get("redis_role", "unknown"))


def _spawn(check: Callable[[dict[str, str]], None], results: dict[str, str]) -> threading.Thread:
    # A daemon, so a check stuck on a hung backend never holds up the process's exit.
    thread = threading.Thread(target=check, args=(results,), daemon=True,
                              name=f"ready{check.__name__}")
    thread.start()
    return thread


def _missing(part: str, found: dict[str, str], deadline_s: float) -> str:
    if part == "migrations" and found.get("database") != "ok":
        return "not checked: the database did not answer"
    return f"{_NAMES[part]} did not answer within {deadline_s:g} s"


def _check_redis(results: dict[str, str]) -> None:
    results["redis"], results["redis_role"] = store.ping(REDIS_TIMEOUT_S)


def _check_database(results: dict[str, str]) -> None:
    """``SELECT 1``, then the migration plan, on a connection of the probe's own."""
    conn = _probe_connection()
    try:
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError as exc:
            # One update, so a snapshot never holds the one result without the other.
            results.update(database=f"database unreachable: {exc}",
                           migrations="not checked: the database is unreachable")
            return
        results["database"] = "ok"
        results["migrations"] = _check_migrations(conn)
    finally:
        conn.close()


def _probe_connection() -> BaseDatabaseWrapper:
    """A new connection to the default database, for this thread alone; the caller closes it.

    A wrapper of its own rather than ``django.db.connection``, so that it
    carries libpq's ``connect_timeout`` and is never kept open (``CONN_MAX_AGE``).
    """
    settings_dict = connections.settings[DEFAULT_DB_ALIAS]
    if settings_dict["ENGINE"].endswith("postgresql"):
        options = {**settings_dict.get("OPTIONS", {}), "connect_timeout": PG_CONNECT_TIMEOUT_S}
        options.pop("pool", None)  # one plain connection, not a pool of the probe's own
        settings_dict = {**settings_dict, "OPTIONS": options}
    wrapper: BaseDatabaseWrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(
        settings_dict, DEFAULT_DB_ALIAS)
    return wrapper


def _check_migrations(conn: BaseDatabaseWrapper) -> str:
    try:
        executor = MigrationExecutor(conn)
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
            "failing": report.failing, "checks": report.checks, "redis_role": report.redis_role}
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
