"""Worker bootsteps: the coordinator's duties inside every ``celery worker``.

A ``StartStopStep`` on the *worker* blueprint (it runs once; the consumer
blueprint restarts on every broker reconnect) starts one daemon thread in the
main process (DESIGN §4a). The thread has its own Redis client and runs, each
at its own cadence, for the queues this worker consumes:

- the delayed-job promoter (due jobs → broker), polled at most every 50 ms;
- the lock heartbeat for the jobs this process runs right now;
- the stalled-job sweep (locks that expired: worker or host lost);
- the worker's presence heartbeat (``workers.presence``);
- the duties other apps register through ``workers.duties`` (``deadletter``: the
  write of dead letters kept in Redis during a database outage).

A duty that meets a Redis or database error waits the shortest
``retry_process_delay_ms`` (seed ``retryProcessDelay``) of the served queue
types before it tries again.

A thread rather than hub timers: under the solo pool a long job blocks the
event loop, and the lock heartbeat must keep going.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import psutil
from celery import bootsteps

import workers.control  # noqa: F401  (registers the jq_sync_consumers remote-control command)
from workers.duties import RegisteredDuty, registered

logger = logging.getLogger("queues.worker")
PROMOTE_POLL = 0.05  # seconds: keeps delayed-job lateness well under 100 ms
CONSUMER_SYNC = 1.0  # seconds between re-reads of the durable pause flags
DRAIN_POLL = 0.5  # seconds between checks for running jobs during a warm shutdown
GATE_POLL = 1.0  # seconds: a limit changed at runtime applies within this (queues.ops.limits)
GATE_MIN_WAIT = 0.005  # seconds between pumps of a gate that has more to let out


@dataclass
class Duty:
    """A periodic job of the thread: ``run`` returns seconds until it wants to run again."""

    name: str
    run: Callable[[], float]
    next_at: float = 0.0


class _Resources:
    """RSS and CPU % of the worker's main process plus its pool children.

    psutil measures CPU between two calls on the same object, so the
    ``Process`` objects are kept from one heartbeat to the next.
    """

    def __init__(self) -> None:
        self.main = psutil.Process(os.getpid())
        self.known: dict[int, psutil.Process] = {}

    def sample(self) -> tuple[int, float]:
        procs = [self.main, *self.main.children(recursive=True)]
        self.known = {p.pid: self.known.get(p.pid, p) for p in procs}
        rss, cpu = 0, 0.0
        for proc in self.known.values():
            try:
                rss += proc.memory_info().rss
                cpu += proc.cpu_percent(None)
            except psutil.Error:
                continue
        return rss, round(cpu, 1)


def _stalled_interval(queues: tuple[str, ...]) -> float:
    """Seconds: the shortest stalledInterval of the served queue types."""
    from django.db import DatabaseError

    from queues import registry
    from queues.conf import settings

    try:
        specs = registry.all_specs()
    except DatabaseError:
        return settings.WORKER_STALLED_INTERVAL / 1000
    known = [specs[q].stalled_interval_ms for q in queues if q in specs]
    return min(known or [settings.WORKER_STALLED_INTERVAL]) / 1000


def retry_process_delay(queues: tuple[str, ...], delays_ms: Mapping[str, int] | None,
                        fallback_ms: int) -> float:
    """Seconds a duty waits after a Redis or database error before trying again.

    The shortest ``retry_process_delay_ms`` of the served queue types (``delays_ms``
    by queue name); ``fallback_ms`` (WORKER_RETRY_PROCESS_DELAY) when the registry
    could not be read (``None``) or serves none of ``queues``.
    """
    known = [delays_ms[q] for q in queues if q in delays_ms] if delays_ms is not None else []
    return min(known or [fallback_ms]) / 1000


def _retry_process_delay(queues: tuple[str, ...]) -> float:
    from django.db import DatabaseError

    from queues import registry
    from queues.conf import settings

    try:
        delays: dict[str, int] | None = {
            name: spec.retry_process_delay_ms for name, spec in registry.all_specs().items()}
    except DatabaseError:
        delays = None
    return retry_process_delay(queues, delays, settings.WORKER_RETRY_PROCESS_DELAY)


class CoordinatorStep(bootsteps.StartStopStep):
    """Runs the coordinator's periodic duties in one daemon thread."""

    requires = {"celery.worker.components:Pool"}
    label = "Coordinator"

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._draining = threading.Event()
        self._thread: threading.Thread | None = None
        self._probe: Any = None  # workers.probe's server, when WORKER_PROBE_PORT is set
        self._queues: tuple[str, ...] = ()
        self._started = 0

    def start(self, worker: Any) -> None:
        self._queues = tuple(sorted(q.name for q in worker.app.amqp.queues.consume_from.values()))
        worker.jq_configured_queues = self._queues  # read by the jq_sync_consumers command
        self._skip_paused_queues(worker)
        self._restore_pool_size(worker)
        self._sync_limits()
        self._serve_probe(worker)
        self._started = int(time.time() * 1000)
        self._resources = _Resources()
        duties = self._duties(worker)
        self._thread = threading.Thread(target=self._loop, args=(duties,), name="jq-coordinator",
                                        daemon=True)
        self._thread.start()

    def _skip_paused_queues(self, worker: Any) -> None:
        """Start the consumer without paused queues (it starts after this step)."""
        from queues.exceptions import BackendUnavailable
        from workers.control import desired_queues

        try:
            desired = desired_queues(self._queues, worker.hostname)
        except BackendUnavailable:
            return  # the first sync, a second from now, will catch up
        for queue in set(self._queues) - desired:
            logger.info("queue %s is paused: not consuming it", queue)
            worker.app.amqp.queues.deselect(queue)

    def _serve_probe(self, worker: Any) -> None:
        """Answer /health and /ready for this worker when WORKER_PROBE_PORT is set."""
        from queues.conf import settings
        from workers import probe

        if settings.WORKER_PROBE_PORT and self._probe is None:
            self._probe = probe.serve(worker.hostname, settings.WORKER_PROBE_PORT)

    def _sync_limits(self) -> None:
        """Copy the served queues' limits from SQL to Redis (a Redis that lost its data)."""
        from django.db import DatabaseError

        from queues.exceptions import BackendUnavailable, QueueTypeNotFound
        from queues.ops import limits

        for queue in self._queues:
            try:
                limits.sync_limits(queue)
            except (BackendUnavailable, DatabaseError, QueueTypeNotFound) as exc:
                logger.warning("limits of %s not synced: %s", queue, exc)

    def _restore_pool_size(self, worker: Any) -> None:
        """Come back at the pool size scaling last set for this worker."""
        from queues.exceptions import BackendUnavailable
        from queues.store import workers as worker_store

        try:
            wanted = worker_store.pool_target(worker.hostname)
        except BackendUnavailable:
            return
        delta = wanted - pool_size(worker) if wanted is not None else 0
        try:
            if delta > 0:
                worker.pool.grow(delta)
            elif delta < 0:
                worker.pool.shrink(-delta)
        except (NotImplementedError, ValueError) as exc:  # solo/threads pools cannot resize
            logger.warning("cannot restore pool size %s: %s", wanted, exc)
            return
        if delta:
            logger.info("pool size restored to %s (set by scaling)", wanted)

    def stop(self, worker: Any) -> None:
        """Warm shutdown: keep renewing the locks of running jobs while the pool drains.

        Celery stops this step *before* the pool (it requires the pool), and the
        pool then waits for its running jobs. Ending lock renewal here would let
        another worker take a long job's expired lock for a lost worker and run it
        a second time; so the thread goes on renewing, and only that, until no
        job runs (or the process exits).
        """
        self._draining.set()
        self._deregister(worker)

    def terminate(self, worker: Any) -> None:
        # Cold shutdown: Celery has already cancelled the running jobs, and
        # JobRequest.cancel handed each back to waiting.
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._probe is not None:
            self._probe.shutdown()
            self._probe = None
        self._deregister(worker)

    def _deregister(self, worker: Any) -> None:
        from queues.exceptions import BackendUnavailable
        from workers import presence

        try:
            presence.deregister(worker.hostname, self._queues)
        except BackendUnavailable as exc:  # Redis may already be gone at shutdown
            logger.warning("could not deregister worker %s: %s", worker.hostname, exc)

    def _duties(self, worker: Any) -> list[Duty]:
        return [
            Duty("consumers", lambda: self._sync_consumers(worker)),
            Duty("promote", self._promote),
            Duty("gate", self._pump_gates),
            Duty("locks", self._renew_locks),
            Duty("stalled", self._sweep_stalled),
            Duty("presence", lambda: self._presence(worker)),
            # Other apps' duties (deadletter: the flush of dead letters kept during a DB outage).
            *(Duty(duty.name, partial(self._run_registered, duty)) for duty in registered()),
        ]

    def _loop(self, duties: list[Duty]) -> None:
        from django.db import close_old_connections

        while not self._stop.is_set():
            if self._draining.is_set():
                duties = [duty for duty in duties if duty.name == "locks"]
                if not self._jobs_running():
                    return
            self._run_due(duties)
            # Like Celery does around tasks: drop broken or expired connections,
            # so a database that was down is reached again once it is back.
            close_old_connections()
            wait = min(d.next_at for d in duties) - time.monotonic()
            self._stop.wait(max(0.0, min(wait, DRAIN_POLL) if self._draining.is_set() else wait))

    def _run_due(self, duties: list[Duty]) -> None:
        from django.db import DatabaseError

        from queues.exceptions import BackendUnavailable

        now = time.monotonic()
        for duty in duties:
            if duty.next_at <= now:
                try:
                    delay = duty.run()
                except (BackendUnavailable, DatabaseError) as exc:
                    logger.warning("%s skipped: %s", duty.name, exc)
                    delay = _retry_process_delay(self._queues)
                duty.next_at = time.monotonic() + delay

    @staticmethod
    def _jobs_running() -> bool:
        from queues.jobs.request import running_jobs

        return bool(running_jobs())

    def _sync_consumers(self, worker: Any) -> float:
        from workers.control import sync_consumers

        if worker.consumer is not None and worker.consumer.task_consumer is not None:
            sync_consumers(worker.consumer, self._queues, worker.hostname)
        return CONSUMER_SYNC

    def _promote(self) -> float:
        from queues import store

        wait = PROMOTE_POLL
        for queue in self._queues:
            _moved, next_due = store.promote(queue)
            if next_due >= 0:
                wait = min(wait, max(0.0, (next_due - store.now_ms()) / 1000))
        return wait

    def _pump_gates(self) -> float:
        """Let out the jobs the served queues' limits hold, when a rate window reopens."""
        from queues import store
        from queues.store import gate

        wait = GATE_POLL
        for queue in self._queues:
            if not gate.has_held(queue):
                continue
            _sent, wake = gate.pump(queue)
            if wake >= 0:
                wait = min(wait, max(GATE_MIN_WAIT, (wake - store.now_ms()) / 1000))
        return wait

    def _renew_locks(self) -> float:
        from queues.jobs import recovery
        from queues.jobs.request import running_jobs

        recovery.extend_locks(running_jobs())
        return _stalled_interval(self._queues) / 3

    def _sweep_stalled(self) -> float:
        from queues.jobs import recovery

        interval = _stalled_interval(self._queues)
        for queue in self._queues:
            recovery.recover_stalled(queue)
        recovery.recover_orphaned_messages(self._queues, older_than_s=interval)
        recovery.recover_vanished_messages(self._queues)
        return interval / 2

    def _run_registered(self, duty: RegisteredDuty) -> float:
        """A duty another app registered (``workers.duties``): its interval, or the retry delay."""
        return duty.interval_s if duty.run() else _retry_process_delay(self._queues)

    def _presence(self, worker: Any) -> float:
        from celery.worker import state

        from queues.conf import settings
        from workers import presence

        rss, cpu = self._resources.sample()
        presence.heartbeat(presence.Heartbeat(
            hostname=worker.hostname, pid=os.getpid(), queues=self._queues,
            concurrency=pool_size(worker), started_at=self._started,
            active_jobs=len(state.active_requests), rss_bytes=rss, cpu_percent=cpu,
            pool=type(worker.pool).__module__.rsplit(".", 1)[-1],
        ))
        return settings.WORKER_HEARTBEAT_INTERVAL / 1000


def pool_size(worker: Any) -> int:
    """Processes (or threads) the pool runs now; grows and shrinks with scaling."""
    size = getattr(worker.pool, "num_processes", None)
    return int(size) if size else int(worker.concurrency)

