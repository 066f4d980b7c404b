"""A real worker whose pool stops taking jobs while they wait is reported stuck, then recovers.

The worker's pool child is SIGSTOPped: its main process (and the coordinator thread
in it) goes on heartbeating, but no job starts. ``WORKER_STUCK_AFTER`` is read by
the reader (this process), so the test overrides it here.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import pytest
import redis
from django.test import override_settings

from queues.jobs import enqueue, enqueue_many
from queues.ops import metrics
from queues.ops.health import queue_health
from tests.conftest import wait_for
from tests.redis_plugin import free_port
from workers import presence

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
Q = "photo-processing"
FAST = {"WORKER_HEARTBEAT_INTERVAL": "300"}
STUCK_AFTER = 1500  # ms


def stuck_gauge() -> float:
    [family] = [f for f in metrics.build_registry().collect() if f.name == "queue_workers_stuck"]
    return next(s.value for s in family.samples if s.labels == {"queue": Q})


def restart_advice() -> list[str]:
    return [a.action for a in queue_health(Q).recommendations if a.type == "restart_worker"]


@contextmanager
def stopped(pids: list[int]) -> Iterator[None]:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_a_worker_whose_pool_is_stopped_is_reported_stuck_and_recovers(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    worker = worker_process((Q,), pool="prefork", concurrency=1, name="frozen", env=FAST)
    [w] = wait_for(lambda: presence.list_workers(Q))
    assert enqueue(Q, "t-sleep", {"tag": "warm-up"}).wait(15).state == "completed"
    children = [p.pid for p in psutil.Process(worker.pid).children()]
    assert len(children) == 1, "prefork -c 1 runs one pool child"
    with override_settings(COORDINATOR_WORKER_STUCK_AFTER=STUCK_AFTER):
        with stopped(children):
            handles = enqueue_many(Q, "t-sleep", [{"tag": str(n)} for n in range(3)])
            wait_for(lambda: presence.worker_status(w.id).status == "stuck", timeout=20)
            assert [x.status for x in presence.list_workers(Q)] == ["stuck"]
            assert stuck_gauge() == 1
            [action] = restart_advice()
            assert w.id in action
            assert r.lrange("test:started", 0, -1) == [b"warm-up"], "nothing ran while stopped"
        assert all(h.wait(20).state == "completed" for h in handles)
        wait_for(lambda: presence.worker_status(w.id).status == "active", timeout=10)
        assert stuck_gauge() == 0 and restart_advice() == []
        assert worker.proc.poll() is None


def probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_worker_probe_fails_ready_while_the_worker_is_stuck(
        builtin_queue_types: None, worker_process: Any) -> None:
    port = free_port()
    # The probe reads the worker's state in the worker: it gets the threshold by env.
    worker = worker_process((Q,), pool="prefork", concurrency=1, name="probed", env={
        **FAST, "WORKER_PROBE_PORT": str(port), "WORKER_STUCK_AFTER": str(STUCK_AFTER)})
    wait_for(lambda: probe(port, "/ready")[0] == 200, timeout=20)
    _, ready = probe(port, "/ready")
    assert ready["status"] == "active" and ready["worker"].startswith("probed@")
    assert probe(port, "/health") == (200, {"status": "ok", "worker": ready["worker"]})
    assert probe(port, "/nope")[0] == 404
    children = [p.pid for p in psutil.Process(worker.pid).children()]
    with stopped(children):
        enqueue_many(Q, "t-sleep", [{"tag": str(n)} for n in range(2)])
        wait_for(lambda: probe(port, "/ready")[0] == 503, timeout=20)
        assert probe(port, "/ready")[1]["status"] == "stuck"
        assert probe(port, "/health")[0] == 200  # alive: restart it, it is not dead
    wait_for(lambda: probe(port, "/ready")[0] == 200, timeout=20)
