"""Worker presence, pause/resume of one worker, scaling and autoscaling with real workers."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from deadletter.models import AuditEvent
from queues.exceptions import WorkerNotFound
from queues.jobs import enqueue, enqueue_many
from queues.models import QueueType
from queues.store import keys
from tests.conftest import as_int, wait_for
from workers import autoscaling, presence, scaling
from workers.models import ScalingPolicy

pytestmark = pytest.mark.django_db(transaction=True)
Q = "photo-processing"
FAST = {"WORKER_HEARTBEAT_INTERVAL": "300"}


def _pool(r: redis.Redis, hostname: str) -> int:
    return int(r.hget(keys.worker(hostname), "concurrency") or 0)


def test_workers_report_presence_and_stale_ones_are_marked(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    import psutil

    alpha = worker_process((Q, "maintenance"), concurrency=2, name="alpha", env=FAST)
    wait_for(lambda: presence.list_workers(Q))
    [w] = presence.list_workers(Q)
    assert (w.status, w.concurrency, w.pool, set(w.queue_names)) == (
        "active", 2, "prefork", {Q, "maintenance"})
    enqueue_many(Q, "t-sleep", [{}] * 3)
    wait_for(lambda: presence.worker_status(w.id).processed_jobs == 3)
    assert presence.list_workers("batch-processing") == []
    # A worker that dies without deregistering leaves its record; once nothing
    # can heartbeat over it, a silent record must read as stale.
    for proc in [*psutil.Process(alpha.pid).children(recursive=True), psutil.Process(alpha.pid)]:
        proc.kill()
    alpha.proc.wait()
    r.hset(keys.worker(w.id), "last_heartbeat", 1)  # as if silent since 1970
    assert presence.worker_status(w.id).status == "stale"
    assert [x.status for x in presence.list_workers(Q)] == ["stale"]
    with pytest.raises(WorkerNotFound):
        presence.worker_status("nobody@nowhere")


def test_pause_and_resume_one_worker(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    paused = worker_process((Q,), concurrency=1, name="paused", env=FAST)
    wait_for(lambda: presence.list_workers(Q))
    hostname = presence.list_workers(Q)[0].id
    assert presence.pause_worker(hostname, actor="ops").status == "paused"
    time.sleep(1.2)
    handle = enqueue(Q, "t-sleep", {"tag": "x"})
    time.sleep(1.5)
    assert r.llen("test:started") == 0
    worker_process((Q,), concurrency=1, name="other", env=FAST)
    assert handle.wait(15).state == "completed", "another worker takes the job"
    presence.resume_worker(hostname, actor="ops")
    assert presence.worker_status(hostname).status == "active"
    assert paused.proc.poll() is None
    assert [e.action for e in AuditEvent.objects.order_by("pk")] == [
        "pause_worker", "resume_worker"]


def test_scale_workers_resizes_pools_and_a_restart_keeps_the_size(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    first = worker_process((Q,), concurrency=1, name="scaled", env=FAST)
    wait_for(lambda: presence.list_workers(Q))
    hostname = presence.list_workers(Q)[0].id
    result = scaling.scale_workers(Q, 3, actor="ops")
    assert (result.previous_count, result.target_count, result.actual_count, result.action) == (
        1, 3, 3, "scaled_up")
    wait_for(lambda: _pool(r, hostname) == 3)
    first.stop()
    worker_process((Q,), concurrency=1, name="scaled", env=FAST)
    wait_for(lambda: _pool(r, hostname) == 3)
    assert r.hget(keys.meta(Q), "scale_target") == b"3"
    assert as_int(r.hget(keys.stats(Q), "scaling_events")) == 1


def test_a_target_beyond_what_workers_can_host_is_reported_honestly(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    worker_process((Q,), pool="solo", concurrency=1, name="solo", env=FAST)
    wait_for(lambda: presence.list_workers(Q))
    result = scaling.scale_workers(Q, 4)
    assert (result.actual_count, result.action) == (1, "no_change")
    assert r.hget(keys.meta(Q), "scale_target") == b"4"  # for an external scaler


def test_autoscaler_scales_up_on_backlog_respects_cooldown_and_scales_down_when_idle(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    ScalingPolicy.objects.create(
        queue_type=QueueType.objects.get(name=Q), target_processing_time_ms=1000,
        scale_up_cooldown_ms=600000, scale_down_cooldown_ms=0, max_scale_up_step=3,
        max_scale_down_step=2)
    worker_process((Q,), concurrency=2, name="auto", env=FAST)
    wait_for(lambda: presence.list_workers(Q))
    hostname = presence.list_workers(Q)[0].id
    enqueue_many(Q, "t-sleep", [{"ms": 300}] * 60)
    up = autoscaling.check_autoscaling(Q)
    assert (up.outcome, up.current, up.target) == ("scaled", 2, 5)  # one step of 3
    wait_for(lambda: _pool(r, hostname) == 5)
    again = autoscaling.check_autoscaling(Q)
    assert again.outcome == "cooldown" and _pool(r, hostname) == 5
    wait_for(lambda: r.llen(Q) == 0 and not r.zcard(keys.state_index(Q, "active")), timeout=30)
    down = autoscaling.check_autoscaling(Q)
    assert (down.outcome, down.target) == ("scaled", 3)
    wait_for(lambda: _pool(r, hostname) == 3)
    last = autoscaling.check_autoscaling(Q)
    assert (last.outcome, last.target) == ("scaled", 2)  # the queue type's minimum
    wait_for(lambda: _pool(r, hostname) == 2)
    assert autoscaling.check_autoscaling(Q).outcome == "no_change"


def test_the_wanted_total_is_exported_for_an_external_scaler(
        r: redis.Redis, builtin_queue_types: None) -> None:
    from django.test import Client

    scaling.scale_workers(Q, 6)  # no worker runs: nothing can host it here
    text = Client().get("/metrics").content.decode()
    assert f'queue_desired_processes{{queue="{Q}"}} 6.0' in text
    assert 'queue_desired_processes{queue="maintenance"} -1.0' in text


def test_with_no_live_worker_the_autoscaler_asks_an_external_scaler_for_processes(
        r: redis.Redis, builtin_queue_types: None) -> None:
    from django.test import Client

    ScalingPolicy.objects.create(queue_type=QueueType.objects.get(name=Q),
                                 target_processing_time_ms=60000, max_scale_up_step=1)
    presence.heartbeat(presence.Heartbeat("gone@host", 1, (Q,), 4, 1, 0, 0, 0.0))
    r.hset(keys.worker("gone@host"), "last_heartbeat", 1)  # silent since 1970: stale
    assert [w.status for w in presence.list_workers(Q)] == ["stale"]
    assert autoscaling.check_autoscaling(Q).target == 2, "no backlog: the type's minimum"
    enqueue_many(Q, "t-sleep", [{}] * 5)
    decision = autoscaling.check_autoscaling(Q)
    # 5 waiting at one job/min/process within 60 s, x1.2 = 6; steps do not hold it at 1.
    assert (decision.outcome, decision.current, decision.target, decision.reason) == (
        "scale_up", 0, 6, "no workers: external scaler must add some")
    assert r.hget(keys.meta(Q), "scale_target") == b"6"
    text = Client().get("/metrics").content.decode()
    assert f'queue_desired_processes{{queue="{Q}"}} 6.0' in text
    assert autoscaling.check_autoscaling(Q).outcome == "scale_up"
    events = AuditEvent.objects.filter(action="scale").order_by("pk")
    assert [(e.actor, e.details["target"]) for e in events] == [
        ("system:autoscaler", 2), ("system:autoscaler", 6)], "audited when the target changes"
    assert events[1].details["reason"] == decision.reason
