"""Probes and queue health without a worker: liveness, readiness, 404s, rules that need none."""

from __future__ import annotations

import pytest
import redis
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client, override_settings

from queues.exceptions import QueueTypeNotFound
from queues.jobs import enqueue_many
from queues.ops.health import analyze_bottlenecks, optimize_queue, queue_health
from queues.ops.manager import pause_queue
from tests.conftest import bearer
from tests.redis_plugin import free_port

pytestmark = pytest.mark.django_db
Q = "photo-processing"


def unreachable_redis() -> override_settings:
    return override_settings(COORDINATOR_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")


def test_liveness_answers_while_the_process_runs() -> None:
    response = Client().get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_probes_refuse_other_methods_with_json() -> None:
    response = Client().post("/health")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert "POST is not allowed" in response.json()["error"]


def test_ready_when_redis_database_and_migrations_are_fine(r: redis.Redis) -> None:
    response = Client().get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "failing": [], "checks": {
        "redis": "ok", "database": "ok", "migrations": "ok"}, "redis_role": "master"}


def test_ready_names_redis_when_it_is_unreachable() -> None:
    with unreachable_redis():
        response = Client().get("/ready")
    body = response.json()
    assert response.status_code == 503 and body["failing"] == ["redis"]
    assert "Redis is unreachable" in body["checks"]["redis"]
    assert body["redis_role"] == "unknown"


@pytest.mark.django_db(transaction=True)
def test_ready_names_an_unapplied_migration(r: redis.Redis) -> None:
    leaf = next(node for node in MigrationLoader(connection).graph.leaf_nodes()
                if node[0] == "queues")
    recorder = MigrationRecorder(connection)
    # Committed, because the probe reads on a connection of its own; recorded again after.
    recorder.migration_qs.filter(app=leaf[0], name=leaf[1]).delete()
    try:
        response = Client().get("/ready")
    finally:
        recorder.record_applied(*leaf)
    body = response.json()
    assert response.status_code == 503 and body["failing"] == ["migrations"]
    assert body["checks"]["migrations"] == f"1 unapplied: queues.{leaf[1]}"


def test_unknown_queue_is_a_json_404_and_an_exception() -> None:
    response = Client(headers=bearer()).get("/queues/no-such-queue/health")
    assert response.status_code == 404
    assert response.json() == {"error": "QueueTypeNotFound",
                               "detail": "Queue type 'no-such-queue' is not registered"}
    for check in (queue_health, analyze_bottlenecks, optimize_queue):
        with pytest.raises(QueueTypeNotFound):
            check("no-such-queue")


def test_idle_queue_is_healthy_and_not_penalised(r: redis.Redis) -> None:
    report = queue_health(Q)
    assert (report.status, report.issues, report.recommendations) == ("healthy", (), ())
    assert report.message == "Queue is operating normally"
    assert report.metrics is not None and report.metrics.processing_rate == 0
    body = Client(headers=bearer()).get(f"/queues/{Q}/health").json()
    assert body["status"] == "healthy" and body["metrics"]["job_counts"]["waiting"] == 0
    result = optimize_queue(Q)
    assert (result.current_performance, result.recommendations) == (100.0, ())


def test_jobs_waiting_with_no_worker_make_the_queue_unhealthy(r: redis.Redis) -> None:
    enqueue_many(Q, "t-echo", [{"value": n} for n in range(3)])
    report = queue_health(Q)
    assert report.status == "unhealthy"
    assert [(i.rule, i.severity) for i in report.issues] == [("no_workers", "critical")]
    [advice] = report.recommendations
    assert (advice.type, advice.priority) == ("scale_workers", "high")
    assert advice.action == f"start one: celery -A coordinator_project worker -Q {Q}"
    response = Client(headers=bearer()).get(f"/queues/{Q}/health")
    assert response.status_code == 200 and response.json()["status"] == "unhealthy"


def test_backlog_over_a_lowered_threshold_is_an_issue(r: redis.Redis) -> None:
    enqueue_many(Q, "t-echo", [{"value": n} for n in range(3)])
    with override_settings(COORDINATOR_HEALTH_MAX_WAITING=2,
                           COORDINATOR_OPTIMIZER_MAX_QUEUE_DEPTH=2):
        report = queue_health(Q)
        result = optimize_queue(Q)
    assert {i.rule for i in report.issues} == {"backlog", "no_workers"}
    assert "High number of waiting jobs: 3" in [i.message for i in report.issues]
    [action] = result.recommendations
    assert (action.type, action.priority) == ("scale_workers", "high")
    assert action.expected_impact is None, "no worker has a measured rate to project from"
    assert result.current_performance < 100


def test_paused_queue_is_degraded_with_a_resume_recommendation(r: redis.Redis) -> None:
    pause_queue(Q, actor="test")
    report = queue_health(Q)
    assert report.status == "degraded"
    assert [(i.rule, i.severity) for i in report.issues] == [("paused", "warning")]
    assert report.message == "Queue has 1 warning(s) but is still functional"
    assert [(a.type, a.priority) for a in report.recommendations] == [("resume_queue", "medium")]


def test_health_is_unknown_when_redis_is_unreachable() -> None:
    with unreachable_redis():
        report = queue_health(Q)
        response = Client(headers=bearer()).get(f"/queues/{Q}/health")
    assert (report.status, report.metrics) == ("unknown", None)
    assert response.status_code == 503 and response.json()["status"] == "unknown"
