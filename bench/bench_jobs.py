"""Jobs of the throughput benchmark (``bench/throughput.py``); loaded through ``JOB_MODULES``.

- ``bench-noop``: a coordinator job on ``photo-processing``.
- ``bench.raw_noop``: a plain Celery task on its own queue (``RAW_QUEUE``), so
  that a plain ``.delay()`` routes it without the coordinator.

Both run the same body: ``INCR`` a counter and, when the payload carries the
enqueue time (``sent``), push ``[sent, started]`` onto a list.
"""

from __future__ import annotations

import json
import time
from typing import Any

from celery import shared_task

from bench.common import redis_client
from queues.jobs import JobContext, job

QUEUE = "photo-processing"
JOB_NAME = "bench-noop"
RAW_QUEUE = "bench-raw"
COUNT_KEY = "bench:throughput:count"
STARTS_KEY = "bench:throughput:starts"

_client = redis_client  # the jobs below run in worker processes


def _noop(data: dict[str, Any]) -> None:
    started = time.time()
    client = _client()
    if "sent" in data:
        client.rpush(STARTS_KEY, json.dumps([data["sent"], started]))
    client.incr(COUNT_KEY)


@job(QUEUE, JOB_NAME)
def bench_noop(data: dict[str, Any], ctx: JobContext) -> None:
    """The coordinator's no-op job."""
    _noop(data)


@shared_task(name="bench.raw_noop", ignore_result=True, queue=RAW_QUEUE)
def raw_noop(data: dict[str, Any]) -> None:
    """The raw Celery no-op task."""
    _noop(data)
