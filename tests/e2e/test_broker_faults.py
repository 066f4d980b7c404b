"""Workers survive a lost broker connection (Redis crash, network cut) and broker items that
are not messages."""

from __future__ import annotations

import json
import time
from functools import partial
from io import StringIO
from typing import Any

import pytest
import redis
from django.core.management import call_command

from queues import store
from queues.jobs import enqueue, enqueue_many
from queues.models import QueueType
from queues.ops import health, metrics
from tests import fixtures_tasks as t
from tests.conftest import resilience_queue_type, wait_for
from tests.redis_plugin import RedisServer
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
R = t.RESILIENCE


@pytest.fixture
def resilience_queue() -> QueueType:
    return resilience_queue_type(stalled_interval_ms=4000, max_stalled_count=3)


def _runs(r: redis.Redis, job_id: str) -> int:
    return int(r.get(t.runs_key(job_id)) or 0)


def _has_run(r: redis.Redis, job_id: str) -> bool:
    return _runs(r, job_id) >= 1


# kombu's own transport still has both bugs: when these XPASS, a kombu upgrade
# fixed them and queues/store/transport.py can drop its patch.
TRANSPORTS = [
    pytest.param({}, id="coordinator-transport"),
    pytest.param({"BROKER_TRANSPORT": "redis"}, id="stock-kombu", marks=pytest.mark.xfail(
        strict=True, reason="kombu 5.7.0: a lost connection or a malformed item kills the worker")),
]


def _finished_or_dead(worker: Any, handles: list[Any], timeout: float = 60) -> None:
    """Wait until every job has finished, or the worker has died; assert it lives."""
    wait_for(lambda: worker.proc.poll() is not None
             or all(h.info().state == "completed" for h in handles), timeout=timeout)
    assert worker.proc.poll() is None, worker.log.read_text()[-4000:]
    assert "Unrecoverable error" not in worker.log.read_text()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_partly_busy_worker_survives_redis_crashes(
        r: redis.Redis, redis_server: RedisServer, resilience_queue: QueueType,
        worker_process: Any, transport: dict[str, str]) -> None:
    worker = worker_process((R,), concurrency=2,
                            env={"WORKER_HEARTBEAT_INTERVAL": "500", **transport})
    for _crash in range(5):
        # Every acknowledged write reaches the disk before the crash.
        redis.Redis.from_url(redis_server.url).config_set("appendfsync", "always")
        busy = enqueue(R, "t-work", {"ms": 2500})  # one slot busy, one free
        wait_for(partial(_has_run, r, busy.id), timeout=20)
        redis_server.crash_and_restart()
        quick = enqueue_many(R, "t-work", [{"ms": 1} for _ in range(20)])
        _finished_or_dead(worker, [busy, *quick])
        # The running job went on through the outage; its redelivered message was a no-op.
        assert _runs(r, busy.id) == 1 and busy.info().result == 2500


@pytest.mark.parametrize("transport", TRANSPORTS[:1])
def test_a_partly_busy_worker_survives_network_cuts(
        r: redis.Redis, redis_server: RedisServer, resilience_queue: QueueType,
        worker_process: Any, transport: dict[str, str]) -> None:
    proxy = TcpProxy(redis_server.port)
    try:
        worker = worker_process((R,), concurrency=2, env={
            "WORKER_HEARTBEAT_INTERVAL": "500", "REDIS_URL": proxy.url, **transport})
        for _cut in range(5):
            busy = enqueue(R, "t-work", {"ms": 1500})  # one slot busy, one free
            wait_for(partial(_has_run, r, busy.id), timeout=30)
            proxy.cut()
            time.sleep(10)  # the fault itself: ten seconds without a network
            proxy.restore()
            quick = enqueue_many(R, "t-work", [{"ms": 1} for _ in range(20)])
            _finished_or_dead(worker, [busy, *quick], timeout=90)
    finally:
        proxy.close()


def _raw_message(r: redis.Redis, task: str, **options: Any) -> dict[str, Any]:
    """A real Celery message for ``task``, taken off the list it was published to."""
    from coordinator_project.celery import app

    app.send_task(task, args=[{"ms": 1}], queue="parking", **options)
    raw = r.rpop("parking")
    assert isinstance(raw, bytes), raw  # one item, no count: a bytes reply or None
    return dict(json.loads(raw))


def _malformed(r: redis.Redis) -> dict[str, bytes]:
    """Items that are not messages kombu or Celery can run, by what is wrong with them."""
    good = _raw_message(r, f"{R}:t-work")
    no_id = json.loads(json.dumps(good))
    del no_id["headers"]["id"]
    return {
        "non-utf8": b"\xff\xfe\x00\x81 not text",
        "non-json": b"hello, I am not JSON",
        "json-list": b"[1, 2, 3]",
        "headers-string": json.dumps({**good, "headers": "task=x"}).encode(),
        "body-not-base64": json.dumps({**good, "body": "@@@ not base64 @@@"}).encode(),
        "no-task-id": json.dumps(no_id).encode(),
        "pickle": json.dumps(_raw_message(r, f"{R}:t-work", serializer="pickle")).encode(),
        "unknown-task": json.dumps(_raw_message(r, f"{R}:no-such-job")).encode(),
        "30mb": json.dumps({**good, "body": "A" * (30 * 1024 * 1024)}).encode(),
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_malformed_messages_are_quarantined_and_the_worker_goes_on(
        r: redis.Redis, resilience_queue: QueueType, worker_process: Any,
        transport: dict[str, str]) -> None:
    bad = _malformed(r)
    for item in bad.values():
        r.lpush(R, item)
    worker = worker_process((R,), concurrency=2, env=transport)
    handles = enqueue_many(R, "t-work", [{"ms": 1} for _ in range(200)])
    _finished_or_dead(worker, handles)
    # Celery itself discards an unknown task name (logged, acked); the rest are quarantined.
    assert "no-such-job" in worker.log.read_text()
    held = [json.loads(e) for e in store.quarantined_messages(R, limit=100)]
    assert len(held) == len(bad) - 1, [e["reason"] for e in held]
    reasons = " | ".join(e["reason"] for e in held)
    for expected in ("not UTF-8", "not JSON", "a JSON list", "headers are a str",
                     "Invalid base64", "KeyError: 'id'", "x-python-serialize",
                     "exceeds the limit"):
        assert expected in reasons
    assert r.llen(R) == 0 and not r.hlen("unacked")
    started = r.lrange("test:started", 0, -1)
    assert sorted(started) == sorted(h.id.encode() for h in handles), "each ran once, no other"
    # Visible to operators: health, /metrics and the CLI.
    report = health.queue_health(R)
    assert report.metrics is not None and report.metrics.quarantined_messages == len(held)
    assert "message_quarantine" in {issue.rule for issue in report.issues}
    assert f'queue_messages_quarantined{{queue="{R}"}} {len(held)}.0' in metrics.render().decode()
    out = StringIO()
    call_command("jobqueue", "quarantine", R, stdout=out)
    assert "not UTF-8 text" in out.getvalue() and "exceeds the limit" in out.getvalue()
