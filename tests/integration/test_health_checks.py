"""Health checks and metrics collection on their beat intervals: entries, transitions, history."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from django.test import Client, override_settings
from django_celery_beat.models import PeriodicTask

from coordinator_project.celery import app
from deadletter import retention
from queues import signals, store
from queues.exceptions import ConfigurationError, QueueTypeNotFound
from queues.jobs import cancel_job, enqueue
from queues.ops import beat, health_history, maintenance
from queues.store import history as history_store
from queues.store import keys
from tests.conftest import bearer

pytestmark = pytest.mark.django_db
Q = "photo-processing"


@pytest.fixture
def health_signals() -> Any:
    """Every ``queue_health_changed`` sent during the test, as dicts of its arguments."""
    sent: list[dict[str, Any]] = []

    def receive(sender: Any, **kwargs: Any) -> None:
        sent.append({k: v for k, v in kwargs.items() if k != "signal"})

    signals.queue_health_changed.connect(receive, dispatch_uid="test-health-signal")
    yield sent
    signals.queue_health_changed.disconnect(dispatch_uid="test-health-signal")


def _entry(name: str) -> PeriodicTask | None:
    return PeriodicTask.objects.filter(name=name).select_related("interval").first()


def test_beat_entries_follow_the_settings() -> None:
    retention.ensure_schedules()
    health_entry, metrics_entry = _entry("health-check"), _entry("metrics-aggregation")
    assert health_entry is not None and metrics_entry is not None
    assert (health_entry.task, health_entry.queue, health_entry.enabled) == (
        "maintenance:health-check", "maintenance", True)
    assert health_entry.interval.every == 60  # HEALTH_CHECK_INTERVAL 60000 ms
    assert metrics_entry.task == "maintenance:metrics-aggregation"
    assert metrics_entry.interval.every == 30  # METRICS_COLLECTION_INTERVAL 30000 ms, not 300 s
    with override_settings(COORDINATOR_HEALTH_CHECK_INTERVAL=15000,
                           COORDINATOR_METRICS_COLLECTION_INTERVAL=120000):
        assert retention.ensure_schedules() == 0, "changed intervals update the entries"
    assert _entry("health-check").interval.every == 15  # type: ignore[union-attr]
    assert _entry("metrics-aggregation").interval.every == 120  # type: ignore[union-attr]
    assert _entry("health-check").schedule.run_every == timedelta(seconds=15)  # type: ignore[union-attr]


def test_a_disabled_feature_has_no_beat_entry() -> None:
    retention.ensure_schedules()
    with override_settings(COORDINATOR_ENABLE_HEALTH_CHECKS=False):
        retention.ensure_schedules()
        assert _entry("health-check") is None
        assert _entry("metrics-aggregation") is not None, "the other one stays"
    with override_settings(COORDINATOR_ENABLE_HEALTH_CHECKS=False,
                           COORDINATOR_ENABLE_METRICS_COLLECTION=False):
        retention.ensure_schedules()
        assert _entry("health-check") is None and _entry("metrics-aggregation") is None
    assert retention.ensure_schedules() == 2, "enabled again: both come back"


def test_the_beat_entry_enqueues_a_health_check_job(r: redis.Redis) -> None:
    retention.ensure_schedules()
    row = _entry("health-check")
    assert row is not None
    handle = beat.enqueue_run(app.tasks[row.task], row, datetime.now(UTC), row.schedule)
    assert handle is not None and handle.queue == "maintenance"
    assert handle.info().name == "health-check" and handle.id.startswith(f"recurring:{row.id}:")


def test_transitions_are_recorded_signalled_and_logged(
        r: redis.Redis, health_signals: list[dict[str, Any]],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="queues.health")
    assert health_history.check_queue(Q) is None, "a first check that finds it healthy"
    assert store_state(r)["status"] == "healthy"
    job = enqueue(Q, "t-echo", {"value": 1})  # waiting, and no worker serves the queue
    down = health_history.check_queue(Q)
    assert down is not None and (down.previous, down.current) == ("healthy", "unhealthy")
    assert "no_workers" in [issue["rule"] for issue in down.issues]
    assert health_history.check_queue(Q) is None, "no change, no transition"
    cancel_job(Q, job.id)
    up = health_history.check_queue(Q)
    assert up is not None and (up.previous, up.current, up.issues) == ("unhealthy", "healthy", ())
    assert [(s["queue"], s["previous"], s["current"]) for s in health_signals] == [
        (Q, "healthy", "unhealthy"), (Q, "unhealthy", "healthy")]
    assert health_signals[0]["issues"][0]["rule"] == "no_workers"
    lines = [(rec.levelname, getattr(rec, "queue", None), getattr(rec, "health_previous", None),
              getattr(rec, "health_current", None), getattr(rec, "health_issues", None))
             for rec in caplog.records if rec.name == "queues.health"]
    assert lines == [("WARNING", Q, "healthy", "unhealthy", ["no_workers"]),
                     ("INFO", Q, "unhealthy", "healthy", [])]
    history = health_history.health_history(Q)
    assert [(t.previous, t.current) for t in history.transitions] == [
        ("unhealthy", "healthy"), ("healthy", "unhealthy")], "newest first"
    assert history.status == "healthy" and history.transitions[0].at == up.at


def store_state(r: redis.Redis) -> dict[str, str]:
    assert r.exists(keys.health_state(Q)), "a check was recorded"
    return history_store.health_state(Q)


def test_a_first_check_that_finds_trouble_is_a_transition(
        r: redis.Redis, health_signals: list[dict[str, Any]]) -> None:
    enqueue(Q, "t-echo", {"value": 1})
    first = health_history.check_queue(Q)
    assert first is not None and (first.previous, first.current) == (None, "unhealthy")
    assert [s["previous"] for s in health_signals] == [None]


def test_the_history_is_bounded(r: redis.Redis) -> None:
    cap = history_store.HEALTH_HISTORY_MAX
    for n in range(cap + 25):
        status = "degraded" if n % 2 == 0 else "healthy"
        assert history_store.record_health_check(Q, status, [], now=n)[0]
    kept = history_store.health_transitions(Q, limit=cap + 25)
    assert len(kept) == cap and r.llen(keys.health_history(Q)) == cap
    assert kept[0]["at"] == cap + 24, "the newest are kept"


def test_unreadable_health_records_nothing(r: redis.Redis, health_signals: list[Any]) -> None:
    from tests.redis_plugin import free_port

    with override_settings(COORDINATOR_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        assert health_history.check_queue(Q) is None
    assert health_signals == [] and not r.exists(keys.health_state(Q))


def test_history_reads_the_hourly_aggregates(r: redis.Redis) -> None:
    hour = store.now_ms() // 3_600_000 - 1
    prefix = keys.stats_bucket_prefix(Q)
    r.hset(f"{prefix}{hour * 60 + 5}", mapping={"completed": 6, "failed": 1, "proc_ms": 700})
    r.hset(f"{prefix}{hour * 60 + 40}", mapping={"completed": 2, "failed": 1, "proc_ms": 300,
                                                 "untimed": 1})  # one expired: no time
    assert maintenance.aggregate_metrics(Q) == 2
    response = Client().get(f"/queues/{Q}/health/history?hours=3", headers=bearer("queues:view"))
    assert response.status_code == 200
    body = response.json()
    assert (body["queue_name"], body["hours"], body["status"], body["transitions"]) == (
        Q, 3, None, [])
    [row] = body["hourly"]
    assert (row["completed"], row["failed"], row["error_rate"], row["average_processing_time"]) == (
        8, 2, 0.2, 111.111)  # 1000 ms over the 9 timed jobs
    assert datetime.fromisoformat(row["hour"].replace("Z", "+00:00")).timestamp() == hour * 3600
    one_hour = Client().get(f"/queues/{Q}/health/history?hours=1",
                                 headers=bearer("queues:view")).json()
    assert len(one_hour["hourly"]) == 1, "the last finished hour is inside a 1-hour window"


def test_history_refuses_bad_input(r: redis.Redis) -> None:
    view = bearer("queues:view")
    assert Client().get(f"/queues/{Q}/health/history?hours=0", headers=view).status_code == 422
    assert Client().get(f"/queues/{Q}/health/history?hours=169", headers=view).status_code == 422
    assert Client().get("/queues/nope/health/history", headers=view).status_code == 404
    other = bearer("queues:view:batch-processing")
    assert Client().get(f"/queues/{Q}/health/history", headers=other).status_code == 403
    with pytest.raises(ConfigurationError, match="hours must be 1 to 168"):
        health_history.health_history(Q, hours=500)
    with pytest.raises(QueueTypeNotFound):
        health_history.health_history("nope")


@pytest.mark.django_db(transaction=True)
def test_the_jobs_run_on_a_worker_and_obey_their_switches(
        r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker(("maintenance",))
    enqueue(Q, "t-echo", {"value": 1})  # no worker serves photo-processing: unhealthy
    result = enqueue("maintenance", "health-check", {"queue": Q}).wait(15)
    assert (result.state, result.result) == ("completed", {Q: "unhealthy"})
    assert json.loads(store_state(r)["issues"])[0]["rule"] == "no_workers"
    with override_settings(COORDINATOR_ENABLE_HEALTH_CHECKS=False,
                           COORDINATOR_ENABLE_METRICS_COLLECTION=False):
        r.delete(keys.health_state(Q))
        off = enqueue("maintenance", "health-check", {"queue": Q}).wait(15)
        metrics_off = enqueue("maintenance", "metrics-aggregation", {"queue": Q}).wait(15)
    assert (off.state, off.result, metrics_off.result) == ("completed", {}, {})
    assert not r.exists(keys.health_state(Q)) and not r.exists(keys.stats_rolled(Q))
