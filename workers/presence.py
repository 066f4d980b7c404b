"""Worker presence: each ``celery worker`` describes itself in Redis.

The bootstep in ``workers.bootsteps`` calls ``heartbeat`` every
``WORKER_HEARTBEAT_INTERVAL`` and ``deregister`` on a clean shutdown. A worker's
status is ``stale`` (silent for longer than ``WORKER_STALE_AFTER``), else ``paused``,
else ``stuck`` (it heartbeats but has taken no job for ``WORKER_STUCK_AFTER`` while
its queues have work: ``queues.store.workers.is_stuck``), else ``active``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from queues import signals, store
from queues.conf import settings
from queues.exceptions import WorkerNotFound
from queues.store import workers as worker_store

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT


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
    pool: str = "prefork"


def heartbeat(beat: Heartbeat) -> None:
    """Write the worker's hash and its presence in each of its queues."""
    now = store.now_ms()
    fields: dict[FieldT, EncodableT] = {
        "hostname": beat.hostname, "pid": beat.pid, "queues": json.dumps(beat.queues),
        "concurrency": beat.concurrency, "started_at": beat.started_at,
        "last_heartbeat": now, "active_jobs": beat.active_jobs, "rss_bytes": beat.rss_bytes,
        "cpu_percent": beat.cpu_percent, "pool": beat.pool,
    }
    worker_store.record_heartbeat(beat.hostname, fields, beat.queues, at=now)


def deregister(hostname: str, queues: tuple[str, ...]) -> None:
    """Remove a worker that shut down cleanly."""
    worker_store.remove_worker(hostname, queues)


def wait_for_workers(queues: tuple[str, ...], *, timeout: float) -> None:
    """Block until every queue has a live worker.

    Raises:
        TimeoutError: some queue had none within ``timeout`` seconds.
    """
    import time

    from queues.ops.manager import queue_status

    deadline = time.monotonic() + timeout
    missing = list(queues)
    while time.monotonic() < deadline:
        missing = [q for q in queues if queue_status(q).workers == 0]
        if not missing:
            return
        time.sleep(0.2)
    raise TimeoutError(f"no worker came up for {', '.join(missing)} within {timeout:.0f}s")


@dataclass(frozen=True)
class WorkerStatus:
    """Seed §3.3 ``WorkerStatus``, plus what the heartbeat carries."""

    id: str
    queue_names: tuple[str, ...]
    status: str  # active | paused | stuck | stale
    processed_jobs: int
    failed_jobs: int
    uptime: int  # milliseconds
    last_activity: datetime
    concurrency: int
    pool: str
    pid: int
    active_jobs: int
    rss_bytes: int
    cpu_percent: float


def _status(f: Mapping[str, str], now: int, stuck: set[str]) -> WorkerStatus:
    last = int(f["last_heartbeat"])
    state = ("stale" if now - last > settings.WORKER_STALE_AFTER
             else "paused" if f.get("paused") == "1"
             else "stuck" if f["hostname"] in stuck else "active")
    return WorkerStatus(
        id=f["hostname"], queue_names=tuple(json.loads(f["queues"])), status=state,
        processed_jobs=int(f.get("processed", 0)), failed_jobs=int(f.get("failed", 0)),
        uptime=now - int(f["started_at"]), last_activity=datetime.fromtimestamp(last / 1000, UTC),
        concurrency=int(f["concurrency"]), pool=f.get("pool", ""), pid=int(f["pid"]),
        active_jobs=int(f["active_jobs"]), rss_bytes=int(f["rss_bytes"]),
        cpu_percent=float(f["cpu_percent"]),
    )


def list_workers(queue: str | None = None) -> list[WorkerStatus]:
    """Every worker that reported (stale ones included until their record expires)."""
    rows = worker_store.read_workers()
    now = store.now_ms()
    stuck = worker_store.stuck_workers(rows, now=now)
    found = [_status(raw, now, stuck) for raw in rows]
    return [w for w in found if queue is None or queue in w.queue_names]


def worker_status(worker_id: str) -> WorkerStatus:
    """One worker's status.

    Raises:
        WorkerNotFound: it never reported, shut down cleanly, or expired.
    """
    raw = worker_store.read_worker(worker_id)
    if raw is None:
        raise WorkerNotFound(worker_id)
    now = store.now_ms()
    return _status(raw, now, worker_store.stuck_workers([raw], now=now))


def _set_paused(worker_id: str, paused: bool, actor: str) -> WorkerStatus:
    from celery import current_app

    worker_status(worker_id)
    worker_store.set_worker_paused(worker_id, paused)
    current_app.control.broadcast("jq_sync_consumers", destination=[worker_id], reply=True,
                                  timeout=0.5)
    signals.announce(actor, "pause_worker" if paused else "resume_worker",
                     target_type="worker", target_id=worker_id)
    return worker_status(worker_id)


def pause_worker(worker_id: str, *, actor: str = "system") -> WorkerStatus:
    """Stop this worker (only) from taking new jobs; running jobs finish.

    Raises:
        WorkerNotFound.
    """
    return _set_paused(worker_id, True, actor)


def resume_worker(worker_id: str, *, actor: str = "system") -> WorkerStatus:
    """Let a paused worker take jobs again.

    Raises:
        WorkerNotFound.
    """
    return _set_paused(worker_id, False, actor)
