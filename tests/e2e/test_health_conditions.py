"""Queue health and the optimizer against real conditions produced with a real Celery worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.test import Client, override_settings

from coordinator_project.celery import app
from queues import registry
from queues.jobs import enqueue, enqueue_many
from queues.models import QueueType
from queues.ops.health import analyze_bottlenecks, optimize_queue, queue_health
from queues.ops.manager import queue_status
from queues.store import keys
from tests.conftest import bearer, text_map, texts, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Q = "photo-processing"


def rules(name: str = Q) -> list[str]:
    return [issue.rule for issue in queue_health(name).issues]


@contextmanager
def worker() -> Iterator[Any]:
    """A solo worker in a thread of this process, stopped (and deregistered) on exit."""
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                      queues=[Q], loglevel="WARNING") as running:
        wait_for(lambda: queue_status(Q).workers == 1)
        yield running


def test_jobs_waiting_after_the_workers_stopped_make_the_queue_unhealthy(
        r: redis.Redis, builtin_queue_types: None) -> None:
    with worker():
        enqueue(Q, "t-echo", {"value": 1}).wait(10)
        assert queue_health(Q).status == "healthy"
    assert queue_status(Q).workers == 0
    enqueue(Q, "t-echo", {"value": 2})
    report = queue_health(Q)
    assert report.status == "unhealthy" and rules() == ["no_workers"]
    assert report.message == "Queue has critical issues that require immediate attention"


def test_failing_jobs_raise_the_error_rate(r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    for handle in [enqueue(Q, "t-echo", {"value": 1}), enqueue(Q, "t-always-fails", {})]:
        handle.wait(10)
    report = queue_health(Q)
    assert report.metrics is not None and report.metrics.error_rate == 0.5
    assert report.status == "degraded" and rules() == ["error_rate"]
    assert report.issues[0].message == "High error rate: 50.0% over 60 min"
    assert [(a.type, a.priority) for a in report.recommendations] == [
        ("investigate_errors", "high")]
    assert "investigate_errors" in [a.type for a in optimize_queue(Q).recommendations]
    body = Client(headers=bearer()).get(f"/queues/{Q}/health").json()
    assert body["status"] == "degraded" and body["metrics"]["error_rate"] == 0.5


def test_jobs_that_waited_long_degrade_health(r: redis.Redis, inprocess_worker: Any) -> None:
    handles = enqueue_many(Q, "t-echo", [{"value": n} for n in range(2)])
    time.sleep(0.35)  # the condition itself: the jobs wait with no worker to take them
    inprocess_worker()
    for handle in handles:
        handle.wait(10)
    with override_settings(COORDINATOR_HEALTH_MAX_AVERAGE_WAIT=300):
        report = queue_health(Q)
    assert report.metrics is not None and report.metrics.average_wait_time >= 350
    assert report.status == "degraded" and [i.rule for i in report.issues] == ["wait_time"]
    assert [a.type for a in report.recommendations] == ["scale_workers"]
    assert rules() == [], "within the default 5 minutes, the same wait is no issue"


def busy_processes(r: redis.Redis) -> int:
    """Active jobs the only worker of ``Q`` reported in its last heartbeat."""
    [host] = texts(r.zrange(keys.queue_workers(Q), 0, -1))
    return int(r.hget(keys.worker(host), "active_jobs") or 0)


def test_backlog_behind_a_busy_worker(r: redis.Redis, inprocess_worker: Any) -> None:
    with override_settings(COORDINATOR_WORKER_HEARTBEAT_INTERVAL=300):
        inprocess_worker()
        enqueue(Q, "t-echo", {"value": 1}).wait(10)  # gives the worker a measured rate
        enqueue(Q, "t-sleep", {"ms": 2500, "tag": "busy"})
        wait_for(lambda: busy_processes(r) == 1)
        QueueType.objects.filter(name=Q).update(scaling_threshold=1)
        registry.invalidate()
        enqueue_many(Q, "t-sleep", [{"tag": n} for n in range(2)])
        report = queue_health(Q)
        assert report.status == "healthy" and rules() == ["scaling_threshold"]
        assert [(a.type, a.priority) for a in report.recommendations] == [
            ("scale_workers", "low")]
        enqueue_many(Q, "t-sleep", [{"tag": n} for n in range(2, 4)])
        with override_settings(COORDINATOR_HEALTH_MAX_WAITING=3,
                               COORDINATOR_OPTIMIZER_MAX_QUEUE_DEPTH=3):
            assert queue_health(Q).status == "degraded" and rules() == ["backlog"]
            [action] = optimize_queue(Q).recommendations
    assert action.type == "scale_workers"
    assert action.evidence.startswith("4 jobs waiting; 1 live worker(s), 100% busy; 1.0 jobs/min")
    # One job finished on a queue less than a minute old: the 5-minute window covers one
    # minute, so 1.0 jobs/min from the one busy worker.
    assert action.expected_impact == (
        "about 1.0 more jobs/min per added worker (the measured rate per live worker); "
        "at today's rate the backlog clears in 4 min")


def test_bottlenecks_use_the_workers_heartbeats(r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    for handle in enqueue_many(Q, "t-sleep", [{"ms": 60} for _ in range(3)]):
        handle.wait(10)
    [host] = texts(r.zrange(keys.queue_workers(Q), 0, -1))

    def heartbeat() -> dict[str, str]:
        return text_map(r.hgetall(keys.worker(host)))

    # A heartbeat may land between two reads: the analysis shows one of them.
    before, analysis, after = heartbeat(), analyze_bottlenecks(Q), heartbeat()
    beat = before if analysis.memory_rss_bytes == int(before["rss_bytes"]) else after
    assert (analysis.workers, analysis.queue_depth, analysis.window_minutes) == (1, 0, 5)
    assert analysis.memory_rss_bytes == int(beat["rss_bytes"]) > 10_000_000
    assert analysis.cpu_usage == float(beat["cpu_percent"])
    # Three jobs within the first minute of the queue's life: 3 per minute covered.
    assert analysis.throughput == 3.0 and analysis.avg_processing_time >= 60
    assert analysis.memory_usage is None, "no WORKER_MEMORY_LIMIT: memory is not judged"
    with override_settings(COORDINATOR_WORKER_MEMORY_LIMIT=int(beat["rss_bytes"]),
                           COORDINATOR_OPTIMIZER_MAX_PROCESSING_TIME=50):
        result = optimize_queue(Q)
    usage = result.analysis.memory_usage
    assert usage is not None and usage > 0.8, "the limit is about what the worker uses"
    assert {a.type: a.priority for a in result.recommendations} == {
        "optimize_job_logic": "medium", "optimize_memory": "high"}
    assert all(a.expected_impact is None for a in result.recommendations)
    assert result.current_performance == 100.0, "nothing waits and nothing failed"
