"""Jobs through a real ``celery worker`` process (prefork), and worker presence."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from queues.jobs import enqueue_many
from queues.ops.manager import queue_status
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import as_int, texts, wait_for

pytestmark = pytest.mark.django_db
Q = "photo-processing"


def test_prefork_worker_runs_each_job_once_and_reports_presence(
        r: redis.Redis, worker_process: Any) -> None:
    handles = enqueue_many(Q, "t-sleep", [{"ms": 20, "tag": n} for n in range(40)],
                           remove_on_complete=False)
    # A duplicated delivery of one message must still run that job once.
    message = r.lindex(Q, 0)
    assert message is not None
    r.lpush(Q, message)
    worker = worker_process((Q,), pool="prefork", concurrency=2)
    wait_for(lambda: queue_status(Q).job_counts["completed"] == 40, timeout=30)
    assert all(as_int(r.get(t.runs_key(h.id))) == 1 for h in handles)
    wait_for(lambda: queue_status(Q).workers == 1)
    [hostname] = texts(r.zrange(keys.queue_workers(Q), 0, -1))
    described = r.hgetall(keys.worker(hostname))
    assert int(described[b"concurrency"]) == 2 and int(described[b"rss_bytes"]) > 0
    worker.stop()
    assert r.zcard(keys.queue_workers(Q)) == 0, "a clean shutdown deregisters the worker"
    assert not r.exists(keys.worker(hostname))
