"""Worker bootsteps: background work inside every ``celery worker`` main process.

A ``StartStopStep`` on the *worker* blueprint (it runs once, unlike the
consumer blueprint, which restarts on every broker reconnect) starts a daemon
thread with its own Redis client (DESIGN §4a). Today the thread writes the
worker's presence heartbeat; the delayed-job promoter, the lock heartbeat and
the stalled-job sweep join it in the same loop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import psutil
from celery import Celery, bootsteps

logger = logging.getLogger("queues.worker")


def _resources(proc: psutil.Process) -> tuple[int, float]:
    """RSS and CPU % of the worker's main process plus its pool children."""
    procs = [proc, *proc.children(recursive=True)]
    rss, cpu = 0, 0.0
    for p in procs:
        try:
            rss += p.memory_info().rss
            cpu += p.cpu_percent(None)
        except psutil.Error:
            continue
    return rss, round(cpu, 1)


class CoordinatorStep(bootsteps.StartStopStep):
    """Runs the coordinator's periodic duties in one daemon thread."""

    requires = {"celery.worker.components:Pool"}
    label = "Coordinator"

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queues: tuple[str, ...] = ()

    def start(self, worker: Any) -> None:
        self._queues = tuple(sorted(q.name for q in worker.app.amqp.queues.consume_from.values()))
        self._started = int(time.time() * 1000)
        self._thread = threading.Thread(target=self._loop, args=(worker,), name="jq-coordinator",
                                        daemon=True)
        self._thread.start()

    def stop(self, worker: Any) -> None:
        from queues.exceptions import BackendUnavailable
        from workers import presence

        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            presence.deregister(worker.hostname, self._queues)
        except BackendUnavailable as exc:  # Redis may already be gone at shutdown
            logger.warning("could not deregister worker %s: %s", worker.hostname, exc)

    def _loop(self, worker: Any) -> None:
        from queues.conf import settings
        from queues.exceptions import BackendUnavailable

        proc = psutil.Process(os.getpid())
        while not self._stop.is_set():
            try:
                self._beat(worker, proc)
            except BackendUnavailable as exc:
                logger.warning("heartbeat skipped: %s", exc)
            self._stop.wait(settings.WORKER_HEARTBEAT_INTERVAL / 1000)

    def _beat(self, worker: Any, proc: psutil.Process) -> None:
        from celery.worker import state

        from workers import presence

        rss, cpu = _resources(proc)
        presence.heartbeat(presence.Heartbeat(
            hostname=worker.hostname, pid=os.getpid(), queues=self._queues,
            concurrency=worker.concurrency, started_at=self._started,
            active_jobs=len(state.active_requests), rss_bytes=rss, cpu_percent=cpu,
        ))


def install(app: Celery) -> None:
    """Add the coordinator's steps to ``app``'s worker blueprint."""
    app.steps["worker"].add(CoordinatorStep)
