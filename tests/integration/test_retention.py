"""Retention: beat entries per queue type, Redis record trimming, dead-letter expiry."""

from __future__ import annotations

import json

import pytest
import redis
from django_celery_beat.models import PeriodicTask

from deadletter import retention
from deadletter.models import AuditEvent, DeadLetter
from queues import store
from queues.jobs import enqueue
from queues.models import QueueType
from queues.ops import manager
from queues.store import keys
from tests.integration.test_deadletter_services import Q, record

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db]


def test_migrate_creates_a_retention_entry_per_queue_type() -> None:
    retention.ensure_schedules()
    clean = PeriodicTask.objects.get(name=f"clean-queue {Q}")
    assert clean.task == "maintenance:clean-queue" and clean.queue == "maintenance"
    assert json.loads(clean.kwargs) == {"queue": Q}
    assert clean.interval.every == 3600  # the seed's one-hour cleanup interval
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    for qt in QueueType.objects.all():
        assert {f"clean-queue {qt.name}", f"expire-dead-letters {qt.name}"} <= names
    assert retention.ensure_schedules() == 0, "idempotent"


def test_clean_queue_trims_finished_records_past_their_age(r: redis.Redis) -> None:
    now = store.now_ms()
    index = keys.state_index(Q, "completed")
    for job_id, age_h in (("fresh", 1), ("stale", 30)):
        r.hset(keys.job(Q, job_id), "state", "completed")
        r.zadd(index, {job_id: now - age_h * 3600 * 1000})
    assert manager.clean_queue(Q) == {"completed": 1, "failed": 0}  # older than 24 h
    assert r.exists(keys.job(Q, "fresh")) and not r.exists(keys.job(Q, "stale"))
    assert r.zrange(index, 0, -1) == [b"fresh"]


def test_dead_letter_policy_archives_then_purges(r: redis.Redis) -> None:
    QueueType.objects.filter(name=Q).update(dead_letter_archive_after_days=2,
                                            dead_letter_purge_after_days=30)
    day = 86400 * 1000
    record("dl-new")
    record("dl-3d", finished_at=store.now_ms() - 3 * day)
    record("dl-40d", finished_at=store.now_ms() - 40 * day)
    assert retention.apply_policy(Q) == {"archived": 2, "purged": 1}
    assert dict(DeadLetter.objects.values_list("job_id", "status")) == {
        "dl-new": "open", "dl-3d": "archived"}
    archive, purge = (AuditEvent.objects.get(action=a) for a in ("archive", "purge"))
    assert sorted(archive.details["job_ids"]) == ["dl-3d", "dl-40d"]
    assert purge.details["job_ids"] == ["dl-40d"]


def test_the_maintenance_job_runs_through_the_normal_path(r: redis.Redis) -> None:
    handle = enqueue("maintenance", "clean-queue", {"queue": Q})
    assert handle.info().name == "clean-queue"
