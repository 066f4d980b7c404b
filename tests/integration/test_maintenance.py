"""The maintenance jobs repair and tidy the coordinator's own data."""

from __future__ import annotations

import pytest
import redis
from django_celery_beat.models import PeriodicTask

from queues import store
from queues.jobs import enqueue
from queues.ops import maintenance
from queues.store import keys
from tests import fixtures_tasks as t

pytestmark = pytest.mark.django_db
Q = "photo-processing"


def test_consistency_check_repairs_indexes(r: redis.Redis) -> None:
    good = t.echo.delay(value=1)
    r.zadd(keys.state_index(Q, "waiting"), {"ghost": 1})  # an entry without a record
    moved = t.echo.delay(value=2)
    r.hset(keys.job(Q, moved.id), "state", "completed")  # record and index disagree
    stray = t.echo.delay(value=3)
    r.zrem(keys.state_index(Q, "waiting"), stray.id)  # a record outside its index
    report = maintenance.check_consistency(Q)
    # checked: good, ghost, moved (in waiting), then moved again in completed
    assert report == {"checked": 4, "orphan": 1, "moved": 1, "unindexed": 1}
    assert r.zscore(keys.state_index(Q, "completed"), moved.id) is not None
    assert set(r.zrange(keys.state_index(Q, "waiting"), 0, -1)) == {
        good.id.encode(), stray.id.encode()}
    assert maintenance.check_consistency(Q)["moved"] == 0


def test_cleanup_orphans(r: redis.Redis) -> None:
    kept = enqueue(Q, "t-echo", {"value": 1})
    r.rpush(keys.job_logs(Q, kept.id), "{}")
    r.rpush(keys.job_logs(Q, "gone"), "{}")
    r.zadd(keys.workers(), {"ghost@host": 1})
    r.zadd(keys.queue_workers(Q), {"ghost@host": 1})
    r.hset(keys.worker_targets(), "ghost@host", 4)
    assert maintenance.cleanup_orphans() == {"logs": 1, "workers": 2, "targets": 1}
    assert r.exists(keys.job_logs(Q, kept.id))


def test_metrics_aggregation_rolls_minutes_into_hours(r: redis.Redis) -> None:
    hour = store.now_ms() // 3_600_000 - 1
    prefix = keys.stats_bucket_prefix(Q)
    for minute in (hour * 60 + 1, hour * 60 + 30):
        r.hset(f"{prefix}{minute}", mapping={"completed": 2, "proc_ms": 100})
    assert maintenance.aggregate_metrics(Q) == 2
    assert r.hgetall(f"{keys.queue_base(Q)}stats:h:{hour}") == {
        b"completed": b"4", b"proc_ms": b"200"}
    assert maintenance.aggregate_metrics(Q) == 0, "each minute is rolled once"


def test_maintenance_jobs_are_scheduled_by_beat() -> None:
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {"consistency-check", "cleanup-orphans", "metrics-aggregation", "autoscale"} <= names
