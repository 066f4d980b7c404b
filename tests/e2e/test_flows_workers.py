"""A flow of 1,000 children across two prefork workers while processes are SIGKILLed.

The parent must run exactly once, after the last child ended, and read 1,000 results:
the counts live in the job records and change in the scripts that end each child, so
whatever recovers a killed child (the lost-child hand-back, the stalled sweep, the
orphaned-message sweep) the child's end is counted once.
"""

from __future__ import annotations

from typing import Any

import psutil
import pytest

from queues import store
from queues.jobs import get_job
from queues.jobs.flows import FlowJob, enqueue_flow, get_flow
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import resilience_queue_type, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
R = t.RESILIENCE
FAST = {"WORKER_STALLED_INTERVAL": "2000", "WORKER_HEARTBEAT_INTERVAL": "500"}
CHILDREN = 1000


@pytest.fixture
def queue(builtin_queue_types: None) -> Any:
    # Locks of 2 s, so a killed worker's jobs come back quickly; killed jobs are
    # recovered (not failed as stalled) however often a test kills them.
    return resilience_queue_type(stalled_interval_ms=2000, max_stalled_count=50)


def _completed() -> int:
    return int(store.client().zcard(keys.state_index(R, "completed")))


def _kill_a_busy_pool_child(pid: int) -> None:
    started = int(store.client().llen("test:started"))
    wait_for(lambda: int(store.client().llen("test:started")) > started, timeout=30)
    psutil.Process(pid).children()[0].kill()


def test_a_flow_of_1000_children_survives_killed_processes_and_its_parent_runs_once(
        queue: Any, worker_process: Any) -> None:
    steady = worker_process((R,), concurrency=4, name="steady", env=FAST)
    doomed = worker_process((R,), concurrency=4, name="doomed", env=FAST)
    flow = enqueue_flow(FlowJob(R, "t-gather", {}), [
        FlowJob(R, "t-work", {"ms": 20}) for _ in range(CHILDREN)])
    children = [c.job.id for c in flow.children]
    wait_for(lambda: _completed() >= 100, timeout=60)
    for _ in range(3):  # pool children die mid-job, now and then
        _kill_a_busy_pool_child(steady.pid)
    wait_for(lambda: _completed() >= 400, timeout=60)
    for proc in [*psutil.Process(doomed.pid).children(), psutil.Process(doomed.pid)]:
        proc.kill()  # a whole worker with its running and reserved jobs
    worker_process((R,), concurrency=4, name="rescuer", env=FAST)
    _kill_a_busy_pool_child(steady.pid)

    parent = flow.job.wait(180)
    assert parent.state == "completed" and parent.result == CHILDREN
    assert int(store.client().get(t.runs_key(flow.job.id)) or 0) == 1  # exactly once
    seen = store.client().hgetall(t.gathered_key(flow.job.id))
    assert int(seen[b"results"]) == CHILDREN and int(seen[b"failures"]) == 0
    assert int(seen[b"sum"]) == 20 * CHILDREN  # each child's own result, once
    ends = [int(f[0] or 0) for f in store.fields_of_many(R, children, "finished_at")]
    assert all(ends) and max(ends) <= int(seen[b"at"])  # after the last child
    runs = [int(store.client().get(t.runs_key(c)) or 0) for c in children]
    assert min(runs) >= 1 and sum(runs) > CHILDREN  # some ran twice: they were killed
    assert all(get_job(R, c).state == "completed" for c in children[:50])
    assert get_flow(R, flow.job.id).pending == 0
