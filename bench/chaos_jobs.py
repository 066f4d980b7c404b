"""The job of the chaos command (``bench.chaos``); loaded through ``JOB_MODULES``.

``chaos-work`` on the ``chaos`` queue type (created by the command with
short locks): it counts each of its executions in Redis, so the command can
tell a job that ran twice from one that ran once, and marks the pool process
it runs in as busy, so a kill can be aimed at a process that is running a job.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import redis

from bench.common import redis_client
from queues.jobs import JobContext, job

QUEUE = "chaos"
JOB_NAME = "chaos-work"
# Locks of 3 s: a killed worker's job is found and recovered within seconds.
QUEUE_CONFIG: dict[str, Any] = {
    "stalled_interval_ms": 3000, "max_stalled_count": 5,
    "remove_on_complete": False, "remove_on_fail": False,
}


def runs_key(job_id: str) -> str:
    """Where ``chaos-work`` counts the executions of job ``job_id``."""
    return f"chaos:runs:{job_id}"


def busy_key(pid: int) -> str:
    """Set while pool process ``pid`` runs a job (its value: the job id)."""
    return f"chaos:busy:{pid}"


@job(QUEUE, JOB_NAME, attempts=3, backoff={"type": "fixed", "delay": 100})
def chaos_work(data: dict[str, Any], ctx: JobContext) -> int:
    """Count this execution, mark the process busy, sleep ``ms`` milliseconds."""
    ms = int(data.get("ms", 0))
    client, busy = redis_client(), busy_key(os.getpid())
    pipe = client.pipeline(transaction=False)
    pipe.incr(runs_key(ctx.job_id))
    # Expires by itself if the process is killed before it can clear it.
    pipe.set(busy, ctx.job_id, px=ms + 10_000)
    pipe.execute()
    time.sleep(ms / 1000)
    # The mark expires by itself: the job's own bookkeeping must not fail the job.
    with contextlib.suppress(redis.RedisError):
        client.delete(busy)
    return ms
