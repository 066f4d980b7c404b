"""Stuck workers through the real store: fabricated heartbeats, jobs really enqueued and claimed.

Times are set back in Redis (a heartbeat's ``started_at``, a job's waiting score, a
worker's ``last_claim_ms``) rather than waited for, so no test sleeps.
"""

from __future__ import annotations

import pytest
import redis
from django.test import override_settings

from queues import store
from queues.jobs import enqueue
from queues.ops import metrics
from queues.ops.health import queue_health
from queues.ops.manager import pause_queue
from queues.store import keys
from tests.conftest import text_map
from workers import presence

pytestmark = pytest.mark.django_db
Q = "photo-processing"
HOST = "w1@test"
MINUTE = 60_000


def beat(hostname: str = HOST, *, active_jobs: int = 0, concurrency: int = 1,
         started_ago: int = 10 * MINUTE) -> None:
    """A heartbeat now from a worker of ``Q`` that started ``started_ago`` ms ago."""
    presence.heartbeat(presence.Heartbeat(
        hostname=hostname, pid=4242, queues=(Q,), concurrency=concurrency,
        started_at=store.now_ms() - started_ago, active_jobs=active_jobs, rss_bytes=1,
        cpu_percent=0.0))


def waiting_since(r: redis.Redis, job_id: str, ago: int) -> None:
    """Set back the job's score in the waiting index, as if pushed ``ago`` ms ago."""
    assert r.zadd(keys.state_index(Q, "waiting"), {job_id: store.now_ms() - ago}, xx=True,
                  ch=True) == 1


def stuck_gauge() -> float | None:
    for family in metrics.build_registry().collect():
        if family.name == "queue_workers_stuck":
            return next(s.value for s in family.samples if s.labels == {"queue": Q})
    return None


def test_a_worker_that_takes_nothing_while_a_job_waits_is_stuck_everywhere(
        r: redis.Redis) -> None:
    beat()
    job = enqueue(Q, "t-sleep", {})
    waiting_since(r, job.id, 2 * MINUTE)
    assert presence.worker_status(HOST).status == "stuck"
    assert [w.status for w in presence.list_workers(Q)] == ["stuck"]
    assert stuck_gauge() == 1
    report = queue_health(Q)
    [issue] = [i for i in report.issues if i.rule == "workers_stuck"]
    assert issue.severity == "critical" and HOST in issue.message
    [advice] = [a for a in report.recommendations if a.type == "restart_worker"]
    assert advice.priority == "high" and HOST in advice.action
    assert report.status == "unhealthy"


def test_the_threshold_is_the_setting(r: redis.Redis) -> None:
    beat()
    job = enqueue(Q, "t-sleep", {})
    waiting_since(r, job.id, 5000)
    assert presence.worker_status(HOST).status == "active", "5 s is under the default minute"
    assert stuck_gauge() == 0
    assert "workers_stuck" not in {i.rule for i in queue_health(Q).issues}
    with override_settings(COORDINATOR_WORKER_STUCK_AFTER=1000):
        assert presence.worker_status(HOST).status == "stuck"
        assert stuck_gauge() == 1


def test_a_claim_records_when_the_worker_last_took_a_job(r: redis.Redis) -> None:
    beat(concurrency=2)
    taken, left = (enqueue(Q, "t-sleep", {"tag": p}) for p in ("p1", "p2"))
    waiting_since(r, left.id, 2 * MINUTE)
    assert store.claim(Q, taken.id, gen=1, token="t1", worker=HOST).claimed
    claimed_at = int(r.hget(keys.worker(HOST), "last_claim_ms") or 0)
    assert abs(claimed_at - store.now_ms()) < 5000
    beat(concurrency=2, active_jobs=1)
    assert presence.worker_status(HOST).status == "active", "it took a job just now"
    r.hset(keys.worker(HOST), "last_claim_ms", store.now_ms() - 2 * MINUTE)
    assert presence.worker_status(HOST).status == "stuck", "a free slot, and nothing taken since"


def test_a_claim_by_a_worker_without_a_hash_creates_none(r: redis.Redis) -> None:
    job = enqueue(Q, "t-sleep", {})
    assert store.claim(Q, job.id, gen=1, token="t1", worker="ghost@nowhere").claimed
    assert not r.exists(keys.worker("ghost@nowhere"))


def test_busy_paused_and_young_workers_and_paused_queues_are_not_stuck(r: redis.Redis) -> None:
    job = enqueue(Q, "t-sleep", {})
    waiting_since(r, job.id, 2 * MINUTE)
    beat("busy@test", active_jobs=1)
    beat("young@test", started_ago=1000)
    beat("paused@test")
    presence.worker_store.set_worker_paused("paused@test", True)
    beat("stuck@test")
    statuses = {w.id: w.status for w in presence.list_workers(Q)}
    assert statuses == {"busy@test": "active", "young@test": "active",
                        "paused@test": "paused", "stuck@test": "stuck"}
    report = queue_health(Q)
    [issue] = [i for i in report.issues if i.rule == "workers_stuck"]
    assert issue.severity == "warning", "other live workers still take jobs"
    assert "stuck@test" in issue.message and "busy@test" not in issue.message
    pause_queue(Q)
    assert {w.status for w in presence.list_workers(Q)} == {"active", "paused"}
    assert stuck_gauge() == 0


def test_a_silent_worker_is_stale_not_stuck(r: redis.Redis) -> None:
    beat()
    job = enqueue(Q, "t-sleep", {})
    waiting_since(r, job.id, 2 * MINUTE)
    r.hset(keys.worker(HOST), "last_heartbeat", 1)
    assert presence.worker_status(HOST).status == "stale"
    assert stuck_gauge() == 0
    assert text_map(r.hgetall(keys.worker(HOST)))["hostname"] == HOST
