"""Delayed-job benchmark: lateness of due jobs, and worker memory with jobs delayed an hour.

A. Lateness: N coordinator jobs delayed uniformly by 1 s-60 s, one idle
   prefork worker; each job records ``time.time()`` at start next to the due
   time its producer computed. Reports lateness percentiles (target: p99 <=
   100 ms) and how many started before they were due (must be 0).
B. Memory: RSS of a worker (main process + pool children) that is idle, that
   serves a queue with 100k coordinator jobs delayed one hour, and that serves
   a queue with raw Celery ``countdown=3600`` tasks (which Celery pulls into
   the worker and holds in its timer).

Runs on a private ``redis-server`` and a private SQLite file::

    .venv/bin/python -m bench.delays [--quick] [--part {lateness,memory,all}]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis

from bench.common import configure as common_configure
from bench.common import stop_process

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = "sqlite:////tmp/jq-bench-delays.sqlite3"
JOB_MODULES = "coordinator_project.sample_jobs,bench.delay_jobs"
RAW_QUEUE = "bench-raw"
HOUR_MS = 3_600_000
LATENESS_TARGET_MS = 100.0
# What Celery does without the project's settings (prefetch on, multiplier 4).
CELERY_DEFAULT_PREFETCH = {"WORKER_DISABLE_PREFETCH": "false", "WORKER_PREFETCH_MULTIPLIER": "4"}


@dataclass(frozen=True)
class Sizes:
    lateness_jobs: int
    max_delay_s: float
    coordinator_jobs: int
    raw_jobs: int
    settle_s: float


@dataclass(frozen=True)
class Rss:
    total: int  # main process + pool children
    main: int


# ----- infrastructure ----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway ``redis-server`` (no persistence) on a free port; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(lambda: _pings(url), timeout=10, what="redis-server to start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def sample_jobs_on_private_redis(database_url: str) -> Iterator[str]:
    """A private Redis, a fresh SQLite database and the sample jobs loaded; yields the URL."""
    Path(database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    with private_redis() as url:
        common_configure({"REDIS_URL": url, "DATABASE_URL": database_url,
                          "JOB_MODULES": "coordinator_project.sample_jobs"},
                         "coordinator_project.sample_jobs")
        yield url


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.ConnectionError:
        return False


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str,
             interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def configure(redis_url: str) -> None:
    """Environment for this process and its workers, then migrate and ``django.setup()``."""
    common_configure({"REDIS_URL": redis_url, "DATABASE_URL": DATABASE_URL,
                      "JOB_MODULES": JOB_MODULES}, "bench.delay_jobs")


class Worker:
    """A ``celery worker`` subprocess on one queue (prefork, 4 processes)."""

    def __init__(self, name: str, queue: str, env: dict[str, str] | None = None) -> None:
        self.log = Path(f"/tmp/jq-bench-delays-{name}.log")
        cmd = [sys.executable, "-m", "celery", "-A", "coordinator_project", "worker",
               "-Q", queue, "-P", "prefork", "-c", "4", "-n", f"{name}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                                         stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_for(lambda: b" ready." in self.log.read_bytes() or self.proc.poll() is not None,
                 timeout=timeout, what=f"worker ready ({self.log})")
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited:\n{self.log.read_text()[-3000:]}")

    def rss(self) -> Rss:
        """RSS of the main process, and of it plus its pool children."""
        main = psutil.Process(self.proc.pid)
        own = main.memory_info().rss
        total = own
        for child in main.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return Rss(total, own)

    def stop(self) -> None:
        stop_process(self.proc)


@contextmanager
def running_worker(name: str, queue: str, env: dict[str, str] | None = None) -> Iterator[Worker]:
    worker = Worker(name, queue, env)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def broker_length(r: redis.Redis, queue: str) -> int:
    """Messages waiting in kombu's lists for ``queue`` (all ten priority levels)."""
    from coordinator_project.celery import app
    from queues.jobs.messages import broker_key

    return sum(int(r.llen(broker_key(app, queue, p))) for p in range(10))


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:7.1f} MB"


# ----- A. lateness ---------------------------------------------------------------
def enqueue_delayed(count: int, max_delay_s: float) -> float:
    """Enqueue ``count`` jobs one by one, each delayed uniformly in [1 s, max]; seconds taken.

    ``due`` is the enqueue time (whole ms, never after the coordinator's own
    clock reading) plus the delay, so a job starting before it is a real bug.
    """
    from bench.delay_jobs import JOB_NAME, QUEUE
    from queues.jobs import enqueue

    began = time.monotonic()
    for _ in range(count):
        delay_ms = round(random.uniform(1.0, max_delay_s) * 1000)
        due = (math.floor(time.time() * 1000) + delay_ms) / 1000
        enqueue(QUEUE, JOB_NAME, {"due": due}, delay_ms=delay_ms)
    return time.monotonic() - began


def read_starts(r: redis.Redis) -> list[tuple[float, float]]:
    from bench.delay_jobs import STARTS_KEY

    return [tuple(json.loads(item)) for item in r.lrange(STARTS_KEY, 0, -1)]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(pct / 100 * len(values)) - 1)]


def run_lateness(r: redis.Redis, sizes: Sizes) -> None:
    from bench.delay_jobs import QUEUE, STARTS_KEY

    count = sizes.lateness_jobs
    print(f"\n== A. Lateness: {count} jobs delayed uniformly 1-{sizes.max_delay_s:.0f} s, "
          "one worker (prefork -c 4) ==")
    r.flushall()
    with running_worker("bench-lateness", QUEUE):
        took = enqueue_delayed(count, sizes.max_delay_s)
        print(f"enqueued {count} jobs one by one (enqueue(..., delay_ms=...)) in {took:.1f} s, "
              "worker already running")
        wait_s = sizes.max_delay_s + 30
        try:
            wait_for(lambda: r.llen(STARTS_KEY) >= count, timeout=wait_s, interval=0.5,
                     what="every job to start")
        except RuntimeError as exc:
            print(f"warning: {exc}")
    report_lateness(read_starts(r), count)


def report_lateness(starts: list[tuple[float, float]], expected: int) -> None:
    late_ms = sorted((started - due) * 1000 for due, started in starts)
    early = sum(1 for value in late_ms if value < 0)
    print(f"run: {len(late_ms)}/{expected}   started before due: {early}")
    if not late_ms:
        print("lateness: no job ran -> MISS")
        return
    p50, p90, p99 = (percentile(late_ms, p) for p in (50, 90, 99))
    print(f"lateness ms: p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}  max {late_ms[-1]:.1f}  "
          f"(min {late_ms[0]:.1f})")
    ok = early == 0 and len(late_ms) == expected and p99 <= LATENESS_TARGET_MS
    print(f"target p99 <= {LATENESS_TARGET_MS:.0f} ms, none early, all run: "
          f"{'PASS' if ok else 'MISS'}")


# ----- B. memory -----------------------------------------------------------------
def settled_rss(worker: Worker, settle_s: float) -> Rss:
    time.sleep(settle_s)
    return worker.rss()


def enqueue_coordinator_delayed(count: int) -> float:
    """``count`` coordinator jobs delayed one hour via ``enqueue_many``; seconds taken."""
    from bench.delay_jobs import JOB_NAME, QUEUE
    from queues.jobs import enqueue_many

    began, chunk = time.monotonic(), 10_000
    for start in range(0, count, chunk):
        items = [{"due": 0} for _ in range(min(chunk, count - start))]
        enqueue_many(QUEUE, JOB_NAME, items, delay_ms=HOUR_MS)
    return time.monotonic() - began


def publish_raw_delayed(count: int) -> float:
    """``count`` raw Celery tasks with ``countdown=3600`` on ``RAW_QUEUE``; seconds taken."""
    from bench.delay_jobs import raw_delayed
    from coordinator_project.celery import app

    began = time.monotonic()
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            raw_delayed.apply_async(countdown=3600, queue=RAW_QUEUE, producer=producer)
    return time.monotonic() - began


def measure_baseline(r: redis.Redis, sizes: Sizes) -> Rss:
    from bench.delay_jobs import QUEUE

    r.flushall()
    with running_worker("bench-mem-idle", QUEUE) as worker:
        return settled_rss(worker, sizes.settle_s)


def measure_coordinator(r: redis.Redis, sizes: Sizes) -> tuple[Rss, str]:
    from bench.delay_jobs import QUEUE
    from queues.store.broker import reserved_count
    from queues.store.queue_state import state_counts

    r.flushall()
    took = enqueue_coordinator_delayed(sizes.coordinator_jobs)
    with running_worker("bench-mem-coord", QUEUE) as worker:
        rss = settled_rss(worker, sizes.settle_s)
        delayed = state_counts(QUEUE, ("delayed",))["delayed"]
        note = (f"enqueue_many took {took:.1f} s; delayed set {delayed}, "
                f"broker list {broker_length(r, QUEUE)}, kombu unacked {reserved_count()}")
    return rss, note


def wait_while_pulling(r: redis.Redis, *, target: int, stall_s: float = 10.0,
                       cap_s: float = 180.0) -> None:
    """Until the raw broker list is down to ``target``, stops shrinking for ``stall_s``,
    or ``cap_s`` pass."""
    deadline = time.monotonic() + cap_s
    last, last_change = broker_length(r, RAW_QUEUE), time.monotonic()
    while last > target and time.monotonic() < deadline:
        time.sleep(0.5)
        now_len = broker_length(r, RAW_QUEUE)
        if now_len < last:
            last, last_change = now_len, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return


def measure_raw(r: redis.Redis, sizes: Sizes, env: dict[str, str] | None) -> tuple[Rss, int, str]:
    """RSS of a raw-Celery worker once it pulled what it will: (rss, pulled, note)."""
    from queues.store.broker import reserved_count

    r.flushall()
    count = sizes.raw_jobs
    took = publish_raw_delayed(count)
    with running_worker("bench-mem-raw", RAW_QUEUE, env) as worker:
        began = time.monotonic()
        wait_while_pulling(r, target=count // 1000)
        pulled_s = time.monotonic() - began
        rss = settled_rss(worker, sizes.settle_s)
        left, unacked = broker_length(r, RAW_QUEUE), reserved_count()
    note = (f"published in {took:.1f} s; after {pulled_s:.1f} s broker list {left}, "
            f"held by the worker (kombu unacked) {unacked}")
    return rss, count - left, note


def run_memory(r: redis.Redis, sizes: Sizes, raw_defaults: bool) -> None:
    print("\n== B. Worker memory (RSS of main process + 4 pool children), jobs delayed 1 h ==")
    baseline = measure_baseline(r, sizes)
    coord, coord_note = measure_coordinator(r, sizes)
    raw, pulled, raw_note = measure_raw(r, sizes, None)
    rows = [
        ("idle worker, nothing queued (baseline)", baseline, ""),
        (f"coordinator, {sizes.coordinator_jobs} jobs delay_ms=1h", coord, coord_note),
        (f"raw Celery, {sizes.raw_jobs} countdown=3600 (project prefetch settings)", raw, raw_note),
    ]
    if raw_defaults or pulled < sizes.raw_jobs // 2:
        defaults, _pulled, note = measure_raw(r, sizes, CELERY_DEFAULT_PREFETCH)
        rows.append((f"raw Celery, {sizes.raw_jobs} countdown=3600 (Celery default prefetch)",
                     defaults, note))
    print_memory(rows, baseline)
    r.flushall()


def print_memory(rows: list[tuple[str, Rss, str]], baseline: Rss) -> None:
    width = max(len(label) for label, _, _ in rows)
    for index, (label, rss, note) in enumerate(rows):
        diff = f"  {(rss.total - baseline.total) / 2**20:+7.1f} MB over baseline" if index else ""
        print(f"{label:<{width}}  {mb(rss.total)} (main process {mb(rss.main).strip()}){diff}")
        if note:
            print(f"{'':<{width}}    {note}")


# ----- main ------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 jobs over 1-10 s; 10,000 jobs for the memory part")
    parser.add_argument("--part", choices=("lateness", "memory", "all"), default="all")
    parser.add_argument("--raw-count", type=int, default=None,
                        help="raw Celery tasks to publish (default 100,000; 10,000 with --quick)")
    parser.add_argument("--raw-defaults", action="store_true",
                        help="also run the raw worker with Celery's default prefetch settings "
                             "(done anyway when the project's settings keep it from pulling)")
    return parser.parse_args(argv)


def sizes_for(args: argparse.Namespace) -> Sizes:
    if args.quick:
        sizes = Sizes(1_000, 10.0, 10_000, 10_000, 3.0)
    else:
        sizes = Sizes(10_000, 60.0, 100_000, 100_000, 10.0)
    if args.raw_count is not None:
        sizes = Sizes(sizes.lateness_jobs, sizes.max_delay_s, sizes.coordinator_jobs,
                      args.raw_count, sizes.settle_s)
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sizes_for(args)
    with private_redis() as url:
        configure(url)
        r = redis.Redis.from_url(url)
        if args.part in ("lateness", "all"):
            run_lateness(r, sizes)
        if args.part in ("memory", "all"):
            run_memory(r, sizes, args.raw_defaults)
    return 0


if __name__ == "__main__":
    sys.exit(main())
