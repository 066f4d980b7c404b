"""Jobs of the delayed-job benchmark (``bench.delays``); loaded through ``JOB_MODULES``.

- ``bench-delayed``: a coordinator job that only records when it started,
  next to the due time its producer computed.
- ``bench.raw_delayed``: a plain Celery task that does nothing, for the
  raw-Celery memory comparison.
"""

from __future__ import annotations

import json
import time
from typing import Any

from celery import shared_task

from bench.common import redis_client
from queues.jobs import JobContext, job

QUEUE = "photo-processing"
JOB_NAME = "bench-delayed"
STARTS_KEY = "bench:delay:starts"

_client = redis_client  # the jobs below run in worker processes


@job(QUEUE, JOB_NAME, attempts=1)
def bench_delayed(data: dict[str, Any], ctx: JobContext) -> None:
    """Record ``[due, started]`` (epoch seconds); nothing else."""
    started = time.time()
    _client().rpush(STARTS_KEY, json.dumps([data["due"], started]))


@shared_task(name="bench.raw_delayed", ignore_result=True)
def raw_delayed() -> None:
    """A raw Celery task that does nothing."""
