"""A graceful shutdown keeps the locks of the jobs it drains; a cold one hands them back."""

from __future__ import annotations

import signal
from typing import Any

import pytest
import redis

from queues.jobs import enqueue, get_job
from queues.models import QueueType
from tests import fixtures_tasks as t
from tests.conftest import resilience_queue_type, wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
R = t.RESILIENCE
FAST = {"WORKER_HEARTBEAT_INTERVAL": "500"}


@pytest.fixture
def resilience_queue() -> QueueType:
    """Locks of 4 s: a 10 s job outlives its lock many times over unless it is renewed."""
    return resilience_queue_type(stalled_interval_ms=4000, max_stalled_count=3)


def _runs(r: redis.Redis, job_id: str) -> int:
    return int(r.get(t.runs_key(job_id)) or 0)


def test_sigterm_during_long_jobs_runs_each_exactly_once(
        r: redis.Redis, resilience_queue: QueueType, worker_process: Any) -> None:
    leaving = worker_process((R,), concurrency=2, name="leaving", env=FAST)
    handles = [enqueue(R, "t-work", {"ms": 10000}) for _ in range(2)]
    wait_for(lambda: all(_runs(r, h.id) == 1 for h in handles), timeout=20)
    staying = worker_process((R,), concurrency=2, name="staying", env=FAST)
    leaving.proc.send_signal(signal.SIGTERM)  # warm shutdown ~1 s into both jobs
    for handle in handles:
        info = handle.wait(40)
        assert (info.state, info.result) == ("completed", 10000)
        assert _runs(r, handle.id) == 1, "the job ran a second time"
    assert leaving.proc.wait(30) == 0
    assert staying.proc.poll() is None
    assert "finished after losing its lock" not in leaving.log.read_text()


def test_a_cold_shutdown_hands_running_jobs_back_at_once(
        r: redis.Redis, resilience_queue: QueueType, worker_process: Any) -> None:
    # A 60 s lock: only the explicit hand-back can bring the job back within the test.
    QueueType.objects.filter(name=R).update(stalled_interval_ms=60000)
    leaving = worker_process((R,), concurrency=1, name="leaving", env=FAST)
    handle = enqueue(R, "t-work", {"ms": 30000})
    wait_for(lambda: _runs(r, handle.id) == 1, timeout=20)
    leaving.proc.send_signal(signal.SIGQUIT)  # Celery's cold shutdown
    leaving.proc.wait(30)
    assert wait_for(lambda: get_job(R, handle.id).state == "waiting", timeout=10)
    assert "cancelled by Celery: handed back to waiting" in leaving.log.read_text()
