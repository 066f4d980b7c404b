"""Kill test: 2,000 jobs while pool children and whole workers are SIGKILLed.

Every job must end completed (or failed as ``stalled``, a documented reason);
none may be lost or left active. Duplicate executions are counted and must
belong to jobs whose run was interrupted (stalled_count > 0).
"""

from __future__ import annotations

import random
import time
from typing import Any

import psutil
import pytest
import redis

from queues.jobs import enqueue_many
from queues.models import QueueType
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
R = t.RESILIENCE
JOBS = 2000
FAST = {"WORKER_STALLED_INTERVAL": "2000", "WORKER_HEARTBEAT_INTERVAL": "500"}


def _kill_tree(pid: int) -> None:
    procs = [*psutil.Process(pid).children(recursive=True), psutil.Process(pid)]
    for proc in procs:
        proc.kill()


def test_no_job_is_lost_under_sigkill(r: redis.Redis, worker_process: Any) -> None:
    QueueType.objects.create(name=R, display_name="Resilience", stalled_interval_ms=2000,
                             max_stalled_count=3, remove_on_complete=False,
                             remove_on_fail=False)
    rng = random.Random(2000)
    handles = enqueue_many(R, "t-work", [{"ms": rng.randint(20, 200)} for _ in range(JOBS)])
    ids = [h.id for h in handles]
    workers = {name: worker_process((R,), concurrency=2, name=name, env=FAST)
               for name in ("a", "b")}
    kills = {"pool child": 0, "whole worker": 0}
    for round_ in range(3):
        time.sleep(4)
        victim = workers["a" if round_ % 2 == 0 else "b"]
        children = psutil.Process(victim.pid).children()
        if children:
            rng.choice(children).kill()
            kills["pool child"] += 1
        time.sleep(3)
        name = "b" if round_ % 2 == 0 else "a"
        _kill_tree(workers[name].pid)
        workers[name].proc.wait()
        kills["whole worker"] += 1
        workers[name] = worker_process((R,), concurrency=2, name=f"{name}{round_}", env=FAST)

    def finished() -> bool:
        done = sum(r.zcard(keys.state_index(R, s)) for s in ("completed", "failed"))
        return done == JOBS

    try:
        wait_for(finished, timeout=300, interval=0.5)
    except AssertionError:
        counts = {state: r.zcard(keys.state_index(R, state)) for state in keys.STATES}
        raise AssertionError(f"not every job finished: {counts}, broker list {r.llen(R)}, "
                             f"unacked {r.hlen('unacked')}") from None
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(keys.job(R, job_id), "state", "failed_reason", "stalled_count")
        pipe.get(t.runs_key(job_id))
    rows = pipe.execute()
    records, runs = rows[0::2], [int(n or 0) for n in rows[1::2]]
    states = [rec[0].decode() for rec in records]
    failed_reasons = {rec[1].decode() for rec in records if rec[0] == b"failed"}
    duplicates = [(rec, n) for rec, n in zip(records, runs, strict=True) if n > 1]
    print(f"\nkill test: {JOBS} jobs, kills {kills}: completed {states.count('completed')}, "
          f"failed {states.count('failed')} {sorted(failed_reasons)}, "
          f"duplicate executions {sum(n - 1 for _, n in duplicates)} "
          f"in {len(duplicates)} jobs, stalled recoveries "
          f"{int(r.hget(keys.stats(R), 'stalled') or 0)}")
    assert set(states) <= {"completed", "failed"}, "no job may be lost or left active"
    assert failed_reasons <= {"stalled"}
    assert r.zcard(keys.state_index(R, "active")) == 0
    assert all(int(rec[2] or 0) >= 1 for rec, _ in duplicates), \
        "only jobs whose run was interrupted may run twice"
    assert sum(kills.values()) == 6
