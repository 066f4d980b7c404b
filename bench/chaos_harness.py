"""What the chaos scenarios (``bench.chaos_scenarios``) run on.

- ``Cluster``: one scenario's private ``redis-server`` (AOF on; ``tests.redis_plugin``)
  and its ``celery worker`` subprocesses (``tests.conftest.WorkerProcess``), the
  faults made on them, and which process deaths were made on purpose.
- ``Feeder``: a thread of the chaos process that enqueues jobs at a steady pace
  (straight to Redis, never through a proxy) and records every acknowledgement.
- ``read_outcomes`` / ``wait_settled``: what became of the acknowledged jobs.
"""

from __future__ import annotations

import itertools
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from bench.chaos_jobs import JOB_NAME, QUEUE, busy_key, runs_key
from bench.common import redis_client
from bench.delays import wait_for
from queues.exceptions import CoordinatorError
from tests.redis_plugin import RedisServer

TERMINAL = frozenset({"completed", "failed", "cancelled"})
WORKER_READY_S = 90.0  # a worker's start on a busy 2-core machine
FAULT_WAIT_S = 60.0  # how long one fault's own condition may take before we note it


@dataclass
class Cluster:
    """A scenario's Redis and workers; ``fault_ends`` are when each fault ended (epoch s)."""

    dir: Path
    fsync: str
    redis: RedisServer = field(default_factory=RedisServer)
    workers: list[Any] = field(default_factory=list)  # tests.conftest.WorkerProcess
    planned: set[int] = field(default_factory=set)  # worker pids stopped on purpose
    faults: Counter[str] = field(default_factory=Counter)  # what was done, how often
    fault_ends: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)
    checks: list[Callable[[], list[str]]] = field(default_factory=list)  # after settling

    # ----- Redis -----------------------------------------------------------------
    def start_redis(self) -> None:
        self.redis.start()
        self._apply_fsync()

    def crash_redis(self) -> None:
        """SIGKILL redis-server and start it on the same port (the fault ends when it answers)."""
        self.redis.crash_and_restart()
        self._apply_fsync()
        self.faults["redis-server"] += 1
        self.fault_ends.append(time.time())

    def _apply_fsync(self) -> None:
        # RedisServer starts with everysec; a restarted server needs it set again.
        if self.fsync != "everysec":
            redis.Redis.from_url(self.redis.url).config_set("appendfsync", self.fsync)

    # ----- workers ---------------------------------------------------------------
    def start_worker(self, name: str, *, concurrency: int = 2,
                     env: dict[str, str] | None = None) -> Any:
        """A prefork ``celery worker -Q chaos`` subprocess, once it is ready."""
        from tests.conftest import WorkerProcess

        worker = WorkerProcess((QUEUE,), "prefork", concurrency, name, env or {})
        self.workers.append(worker)
        worker.wait_ready(WORKER_READY_S)
        return worker

    def busy_children(self, worker: Any) -> list[tuple[psutil.Process, str]]:
        """Pool children of ``worker`` running a job right now, with the job's id."""
        try:
            children = psutil.Process(worker.pid).children()
        except psutil.NoSuchProcess:
            return []
        if not children:
            return []
        marks = redis_client().mget([busy_key(child.pid) for child in children])
        return [(child, mark.decode() if isinstance(mark, bytes) else mark)
                for child, mark in zip(children, marks, strict=True) if mark]

    def _wait_busy(self, worker: Any) -> list[tuple[psutil.Process, str]]:
        found: list[tuple[psutil.Process, str]] = wait_for(
            lambda: self.busy_children(worker), timeout=FAULT_WAIT_S, interval=0.01,
            what=f"a busy pool child of {worker.hostname}")
        return found

    def kill_busy_child(self, worker: Any) -> str:
        """SIGKILL one pool child of ``worker`` while it runs a job; that job's id."""
        child, job_id = self._wait_busy(worker)[0]
        child.send_signal(signal.SIGKILL)
        self.faults["pool child"] += 1
        self.fault_ends.append(time.time())
        return job_id

    def kill_worker(self, worker: Any) -> list[str]:
        """SIGKILL a worker's children and main process while one runs a job; their job ids."""
        busy = self._wait_busy(worker)
        self.planned.add(worker.pid)
        for proc in [*psutil.Process(worker.pid).children(), psutil.Process(worker.pid)]:
            proc.send_signal(signal.SIGKILL)
        worker.proc.wait(30)
        self.faults["whole worker"] += 1
        self.fault_ends.append(time.time())
        return [job_id for _child, job_id in busy]

    def sigterm_worker(self, worker: Any) -> None:
        """Celery's warm shutdown; the fault ends when the worker has exited."""
        self.planned.add(worker.pid)
        worker.proc.send_signal(signal.SIGTERM)
        try:
            code = worker.proc.wait(120)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            code = worker.proc.wait()
            self.notes.append(f"{worker.hostname} had not exited 120 s after SIGTERM: killed")
        self.faults["SIGTERM"] += 1
        self.fault_ends.append(time.time())
        if code != 0:
            self.notes.append(f"{worker.hostname} exited with {code} after SIGTERM")

    def dump_stacks(self) -> None:
        """Ask every live worker for a stack dump of its threads (Celery's SIGUSR1 handler)."""
        live = [w for w in self.workers if w.proc.poll() is None]
        for worker in live:
            worker.proc.send_signal(signal.SIGUSR1)
        try:
            wait_for(lambda: all(b"MainThread" in w.log.read_bytes() for w in live),
                     timeout=10, what="the stack dumps")
        except RuntimeError as exc:
            self.notes.append(str(exc))
        self.notes.append(f"stack dumps of {len(live)} live worker(s) (SIGUSR1) are in their logs")

    def unplanned_deaths(self) -> list[Any]:
        return [w for w in self.workers if w.proc.poll() is not None and w.pid not in self.planned]

    # ----- waiting on a fault's own condition -------------------------------------
    def wait_job(self, job_id: str, predicate: Callable[[Outcome], bool], what: str) -> bool:
        """Until ``predicate`` holds for the job; False (and a note) after FAULT_WAIT_S."""
        try:
            wait_for(lambda: predicate(read_outcomes([job_id])[job_id]), timeout=FAULT_WAIT_S,
                     interval=0.05, what=f"{what} ({job_id})")
        except RuntimeError as exc:
            self.notes.append(str(exc))
            return False
        return True

    def stop(self) -> None:
        """Stop every worker, then Redis; keep worker logs and redis.log, drop the data."""
        for worker in self.workers:
            worker.stop()
        for close in self.closers:
            close()
        self.redis.stop()
        log = self.redis.dir / "redis.log"
        if log.exists():
            shutil.copy(log, self.dir / "redis.log")
        shutil.rmtree(self.redis.dir, ignore_errors=True)

    def log_paths(self) -> list[str]:
        return [str(w.log) for w in self.workers] + [str(self.dir / "redis.log")]


def running(outcome: Outcome) -> bool:
    return outcome.runs >= 1


def handed_back(outcome: Outcome) -> bool:
    """No longer active: returned to waiting by a recovery, or finished."""
    return outcome.state != "active"


def finished(outcome: Outcome) -> bool:
    return outcome.state in TERMINAL


@dataclass(frozen=True)
class Outcome:
    """A job's record state (None: no record), finish time (epoch s) and executions."""

    state: str | None
    finished: float | None
    runs: int


def read_outcomes(ids: list[str]) -> dict[str, Outcome]:
    """The outcome of each job in ``ids``, read with two round trips per 1,000 jobs."""
    from queues import store

    found: dict[str, Outcome] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        records = store.fields_of_many(QUEUE, chunk, "state", "finished_at")
        runs = redis_client().mget([runs_key(job_id) for job_id in chunk])
        for job_id, (state, done), count in zip(chunk, records, runs, strict=True):
            found[job_id] = Outcome(state, int(done) / 1000 if done else None, int(count or 0))
    return found


def wait_settled(ids: list[str], timeout: float) -> bool:
    """Until every job in ``ids`` is in a terminal state; False after ``timeout`` seconds."""
    pending = set(ids)

    def settled() -> bool:
        outcomes = read_outcomes(sorted(pending))
        pending.difference_update(i for i, o in outcomes.items() if o.state in TERMINAL)
        return not pending

    try:
        wait_for(settled, timeout=timeout, interval=0.5, what="every job to finish")
    except RuntimeError:
        return False
    return True


class Feeder(threading.Thread):
    """Enqueues ``chaos-work`` jobs at ``rate`` per second until ``finish()`` is called and
    at least ``minimum`` were acknowledged; ``acked`` holds (job id, epoch s of the ack)."""

    def __init__(self, *, rate: float, minimum: int, ms: tuple[int, int]) -> None:
        super().__init__(name="chaos-feeder", daemon=True)
        self.rate, self.minimum, self.ms = rate, minimum, ms
        self.acked: list[tuple[str, float]] = []
        self.refused: list[str] = []
        self._serial = itertools.count()
        self._lock = threading.Lock()
        self._finish_at: float | None = None

    def submit(self, data: dict[str, Any], prefix: str = "job") -> str | None:
        """Enqueue one job (also from the scenario's thread); its id, or None if refused."""
        from queues.jobs import enqueue

        job_id = f"{prefix}-{next(self._serial)}"
        try:
            enqueue(QUEUE, JOB_NAME, data, job_id=job_id)
        except (CoordinatorError, redis.RedisError):
            with self._lock:
                self.refused.append(job_id)
            return None
        with self._lock:
            self.acked.append((job_id, time.time()))
        return job_id

    def run(self) -> None:
        began = time.monotonic()
        for sent in itertools.count(1):
            if self._done():
                return
            self.submit({"ms": random.randint(*self.ms)})
            # The stream's own pace (not a wait for a condition).
            time.sleep(max(0.0, began + sent / self.rate - time.monotonic()))

    def _done(self) -> bool:
        if self._finish_at is None:
            return False
        # A Redis that stays down must not keep the command running for ever.
        return len(self.acked) >= self.minimum or time.monotonic() - self._finish_at > 120

    def finish(self) -> None:
        self._finish_at = time.monotonic()
        self.join()
