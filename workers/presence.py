"""Worker presence: each ``celery worker`` describes itself in Redis.

The bootstep in ``workers.bootsteps`` calls ``heartbeat`` every
``WORKER_HEARTBEAT_INTERVAL`` and ``deregister`` on a clean shutdown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from queues import keys, store
from queues.conf import settings


@dataclass(frozen=True)
class Heartbeat:
    """What one heartbeat reports about a worker."""

    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: int
    active_jobs: int
    rss_bytes: int
    cpu_percent: float
    status: str = "active"


def heartbeat(beat: Heartbeat) -> None:
    """Write the worker's hash and its presence in each of its queues."""
    now = store.now_ms()
    key = keys.worker(beat.hostname)
    fields: dict[str, Any] = {
        "hostname": beat.hostname, "pid": beat.pid, "queues": json.dumps(beat.queues),
        "concurrency": beat.concurrency, "started_at": beat.started_at,
        "last_heartbeat": now, "active_jobs": beat.active_jobs, "rss_bytes": beat.rss_bytes,
        "cpu_percent": beat.cpu_percent, "status": beat.status,
    }
    with store.backend():
        pipe = store.client().pipeline(transaction=False)
        pipe.hset(key, mapping=fields)
        # Kept twice the stale threshold, so a silent worker is reported stale
        # for a while before it disappears.
        pipe.pexpire(key, 2 * settings.WORKER_STALE_AFTER)
        for queue in beat.queues:
            pipe.zadd(keys.queue_workers(queue), {beat.hostname: now})
        pipe.execute()


def deregister(hostname: str, queues: tuple[str, ...]) -> None:
    """Remove a worker that shut down cleanly."""
    with store.backend():
        pipe = store.client().pipeline(transaction=False)
        pipe.delete(keys.worker(hostname))
        for queue in queues:
            pipe.zrem(keys.queue_workers(queue), hostname)
        pipe.execute()


def wait_for_workers(queues: tuple[str, ...], *, timeout: float) -> None:
    """Block until every queue has a live worker.

    Raises:
        TimeoutError: some queue had none within ``timeout`` seconds.
    """
    import time

    from queues.manager import queue_status

    deadline = time.monotonic() + timeout
    missing = list(queues)
    while time.monotonic() < deadline:
        missing = [q for q in queues if queue_status(q).workers == 0]
        if not missing:
            return
        time.sleep(0.2)
    raise TimeoutError(f"no worker came up for {', '.join(missing)} within {timeout:.0f}s")
