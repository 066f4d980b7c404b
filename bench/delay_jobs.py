"""Jobs of the delayed-job benchmark (``bench.delays``); loaded through ``JOB_MODULES``.

- ``bench-delayed``: a coordinator job that only records when it started,
  next to the due time its producer computed.
- ``bench.raw_delayed``: a plain Celery task that does nothing, for the
  raw-Celery memory comparison.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery import shared_task

from queues.context import JobContext
from queues.jobs import job

QUEUE = "photo-processing"
JOB_NAME = "bench-delayed"
STARTS_KEY = "bench:delay:starts"

_clients: dict[int, redis.Redis] = {}


def _client() -> redis.Redis:
    """One plain Redis client per process (a forked pool child makes its own)."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _clients[pid]


@job(QUEUE, JOB_NAME, attempts=1)
def bench_delayed(data: dict[str, Any], ctx: JobContext) -> None:
    """Record ``[due, started]`` (epoch seconds); nothing else."""
    started = time.time()
    _client().rpush(STARTS_KEY, json.dumps([data["due"], started]))


@shared_task(name="bench.raw_delayed", ignore_result=True)
def raw_delayed() -> None:
    """A raw Celery task that does nothing."""
