"""Throughput benchmark: raw Celery and the coordinator side by side on no-op jobs.

1. enqueue: jobs/s of single ``.delay()`` calls from one process, raw Celery
   task vs ``@job`` task.
2. bulk: jobs/s of one ``queues.jobs.enqueue_many`` call, against raw ``.delay()``
   and against BullMQ's ``Queue.addBulk`` in chunks of 1,000 (``bench/bullmq/``,
   node; ``npm ci`` there on the first run; the row is skipped, with a sentence,
   where node or npm is missing).
3. drain: jobs/s of a ``celery worker`` subprocess (``-c 2``, the same command
   line for both but ``-Q``) running N jobs queued before it started, from
   its "ready." line until the last one finished.
4. latency: enqueue-to-start p50/p99 on an idle worker, one job every ~5 ms.

"Raw Celery" is Celery alone: a plain ``Celery`` app publishing a
``shared_task`` with kombu's own Redis transport, and the project's worker
command line run with that transport (``BROKER_TRANSPORT=redis``).

Every figure is the median of ``--runs`` runs, on a private ``redis-server``
and a private SQLite file::

    .venv/bin/python bench/throughput.py [--quick] [--runs N] [--pools prefork,threads,solo]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(ROOT))

from bench.common import configure as common_configure  # noqa: E402
from bench.common import stop_process  # noqa: E402
from bench.delays import percentile, private_redis, wait_for  # noqa: E402

DATABASE_URL = "sqlite:////tmp/jq-bench-throughput.sqlite3"
JOB_MODULES = "coordinator_project.sample_jobs,bench.bench_jobs"
POOLS = ("prefork", "threads", "solo")
CONCURRENCY = 2
LATENCY_SPACING_S = 0.005
BULLMQ_DIR = ROOT / "bench" / "bullmq"  # package.json, the pinned lock file, add_bulk.mjs
BULLMQ_CHUNK = 1000
WARM_UP_JOBS = 100

Figures = tuple[float, ...]


@dataclass(frozen=True)
class Sizes:
    enqueue: int
    bulk: int
    drain: int
    latency: int
    runs: int


@dataclass(frozen=True)
class Side:
    """One side of the comparison: how it enqueues, fills a queue, counts finished jobs."""

    name: str
    queue: str
    send: Callable[[dict[str, Any]], object]
    fill: Callable[[int], None]
    finished: Callable[[redis.Redis], int]
    worker_env: dict[str, str]  # on top of this process's environment


@dataclass(frozen=True)
class Row:
    label: str
    raw: float  # the baseline: raw Celery, or BullMQ where the label says so
    coordinator: float
    target: float | None = None  # the least coordinator/baseline ratio that passes
    ceiling: float | None = None  # the most it may be (for times, where less is better)


# ----- setup -----------------------------------------------------------------------
def configure(redis_url: str) -> None:
    """Environment for this process and its workers, then migrate and ``django.setup()``."""
    common_configure({"REDIS_URL": redis_url, "DATABASE_URL": DATABASE_URL,
                      "JOB_MODULES": JOB_MODULES}, "bench.bench_jobs")


def payloads(count: int) -> list[dict[str, Any]]:
    return [{"n": n} for n in range(count)]


def raw_celery() -> Celery:
    """A plain Celery app on the same Redis: kombu's own Redis transport, no coordinator.

    The raw side's producer; its worker is the project's command line with kombu's
    transport too (``BROKER_TRANSPORT=redis``), so "raw" is what Celery alone does.
    """
    app = Celery("bench-raw", broker=os.environ["REDIS_URL"], set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True)
    return app


def make_sides() -> tuple[Side, Side]:
    from bench.bench_jobs import COUNT_KEY, JOB_NAME, QUEUE, RAW_QUEUE, bench_noop
    from queues.jobs import enqueue_many
    from queues.store.stats import counters

    raw_noop = raw_celery().tasks["bench.raw_noop"]  # the shared task, bound to that app

    def raw_fill(count: int) -> None:
        for data in payloads(count):
            raw_noop.delay(data)

    def coordinator_fill(count: int) -> None:
        enqueue_many(QUEUE, JOB_NAME, payloads(count))

    raw = Side("raw Celery", RAW_QUEUE, raw_noop.delay, raw_fill,
               lambda r: int(r.get(COUNT_KEY) or 0), {"BROKER_TRANSPORT": "redis"})
    coordinator = Side("coordinator", QUEUE, bench_noop.delay, coordinator_fill,
                       lambda r: counters(QUEUE).get("completed", 0), {})
    return raw, coordinator


# ----- workers -----------------------------------------------------------------------
class Worker:
    """A ``celery worker`` subprocess; only ``-Q`` and ``-P`` vary between benchmarks."""

    def __init__(self, side: Side, pool: str) -> None:
        queue = side.queue
        self.log = Path(f"/tmp/jq-bench-throughput-{pool}-{queue}.log")
        cmd = [sys.executable, "-m", "celery", "-A", "coordinator_project", "worker",
               "-Q", queue, "-P", pool, "-c", str(CONCURRENCY), "-n", f"bench-{pool}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **side.worker_env},
                                         stdout=out,
                                         stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_for(lambda: b" ready." in self.log.read_bytes() or self.proc.poll() is not None,
                 timeout=timeout, interval=0.005, what=f"worker ready ({self.log})")
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_process(self.proc)


@contextmanager
def running_worker(side: Side, pool: str) -> Iterator[Worker]:
    worker = Worker(side, pool)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


# ----- measurements --------------------------------------------------------------------
def enqueue_rate(r: redis.Redis, side: Side, count: int) -> Figures:
    """Jobs/s of ``count`` single ``.delay()`` calls."""
    r.flushall()
    data = payloads(count)
    began = time.perf_counter()
    for item in data:
        side.send(item)
    return (count / (time.perf_counter() - began),)


def bullmq_missing() -> str:
    """Why BullMQ's producer cannot run here (a sentence), or "" when it can.

    Installs the pinned ``bench/bullmq/package-lock.json`` with ``npm ci`` the first time.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not on PATH, so the BullMQ addBulk row is skipped."
    if not (BULLMQ_DIR / "node_modules" / "bullmq").is_dir():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BULLMQ_DIR,
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            return ("npm ci in bench/bullmq failed, so the BullMQ addBulk row is skipped: "
                    f"{done.stderr.strip()[-300:]}")
    return ""


def bullmq_rate(r: redis.Redis, count: int) -> float:
    """Jobs/s of BullMQ's ``Queue.addBulk`` adding ``count`` jobs, 1,000 per call."""
    r.flushall()
    done = subprocess.run(["node", str(BULLMQ_DIR / "add_bulk.mjs"), os.environ["REDIS_URL"],
                           str(count), str(BULLMQ_CHUNK)], capture_output=True, text=True,
                          timeout=600, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["rate"])


def bulk_rate(r: redis.Redis, count: int) -> float:
    """Jobs/s of one ``enqueue_many`` call of ``count`` jobs."""
    from bench.bench_jobs import JOB_NAME, QUEUE
    from queues.jobs import enqueue_many

    r.flushall()
    data = payloads(count)
    began = time.perf_counter()
    enqueue_many(QUEUE, JOB_NAME, data)
    return count / (time.perf_counter() - began)


def drain_rate(r: redis.Redis, side: Side, count: int, pool: str) -> Figures:
    """Jobs/s of a worker started on ``count`` queued jobs, from ready to the last finished."""
    r.flushall()
    side.fill(count)
    with running_worker(side, pool):
        began, done_at_ready = time.perf_counter(), side.finished(r)
        wait_for(lambda: side.finished(r) >= count, timeout=60 + count / 20, interval=0.005,
                 what=f"{side.name} to run {count} jobs ({pool})")
        took = time.perf_counter() - began
    return ((count - done_at_ready) / took,)


def latencies(r: redis.Redis, side: Side, count: int) -> Figures:
    """Enqueue-to-start p50 and p99 (ms) of ``count`` jobs sent one by one to an idle worker."""
    from bench.bench_jobs import STARTS_KEY

    r.flushall()
    with running_worker(side, "prefork"):
        time.sleep(1.0)  # let the pool and the coordinator thread settle
        for _ in range(count):
            side.send({"sent": time.time()})
            time.sleep(LATENCY_SPACING_S)
        wait_for(lambda: r.llen(STARTS_KEY) >= count, timeout=60, interval=0.01,
                 what=f"{side.name} latency jobs to start")
    pairs = [json.loads(item) for item in r.lrange(STARTS_KEY, 0, -1)]
    values = sorted((started - sent) * 1000 for sent, started in pairs)
    return percentile(values, 50), percentile(values, 99)


def paired(label: str, runs: int, sides: tuple[Side, Side],
           measure: Callable[[Side], Figures]) -> list[tuple[float, float]]:
    """``measure`` both sides ``runs`` times, interleaved; per figure (raw, coordinator) medians."""
    samples: dict[str, list[Figures]] = {side.name: [] for side in sides}
    for run in range(1, runs + 1):
        for side in sides:
            figures = measure(side)
            samples[side.name].append(figures)
            shown = ", ".join(f"{value:.1f}" for value in figures)
            print(f"  {label:<22} {side.name:<12} run {run}/{runs}: {shown}", flush=True)
    medians = [[statistics.median(column) for column in zip(*samples[side.name], strict=True)]
               for side in sides]
    return list(zip(*medians, strict=True))


def warm_up(r: redis.Redis, sides: tuple[Side, Side]) -> None:
    """Connections, Lua scripts, message templates and the queue-type snapshot."""
    for side in sides:
        enqueue_rate(r, side, WARM_UP_JOBS)
    r.flushall()


# ----- the four parts ----------------------------------------------------------------
def run_enqueue(r: redis.Redis, sides: tuple[Side, Side], sizes: Sizes) -> list[Row]:
    warm_up(r, sides)
    [(raw, coordinator)] = paired("enqueue .delay()", sizes.runs, sides,
                                  lambda side: enqueue_rate(r, side, sizes.enqueue))
    missing = bullmq_missing()
    bulk: list[float] = []
    bullmq: list[float] = []
    for _ in range(sizes.runs):  # interleaved, as ``paired`` does
        bulk.append(bulk_rate(r, sizes.bulk))
        if not missing:
            bullmq.append(bullmq_rate(r, sizes.bulk))
    print(f"  {'enqueue_many':<22} {'coordinator':<12} runs: "
          + ", ".join(f"{value:.1f}" for value in bulk), flush=True)
    rows = [
        Row(f"enqueue .delay() jobs/s (N={sizes.enqueue})", raw, coordinator, 1.5),
        Row(f"enqueue_many jobs/s (N={sizes.bulk}) vs raw .delay()", raw,
            statistics.median(bulk), 10.0),
    ]
    if missing:
        print(f"  {missing}", flush=True)
    else:
        print(f"  {'addBulk':<22} {'BullMQ':<12} runs: "
              + ", ".join(f"{value:.1f}" for value in bullmq), flush=True)
        rows.append(Row(f"enqueue_many vs BullMQ addBulk x{BULLMQ_CHUNK} jobs/s "
                        f"(N={sizes.bulk}; baseline is BullMQ)", statistics.median(bullmq),
                        statistics.median(bulk), 1.0))
    return rows


def run_drain(r: redis.Redis, sides: tuple[Side, Side], sizes: Sizes,
              pools: list[str]) -> list[Row]:
    rows: list[Row] = []
    for pool in pools:
        measure = functools.partial(drain_rate, r, count=sizes.drain, pool=pool)
        [(raw, coordinator)] = paired(f"drain {pool}", sizes.runs, sides, measure)
        rows.append(Row(f"drain jobs/s, -P {pool} -c {CONCURRENCY} (N={sizes.drain})", raw,
                        coordinator, 0.95))
    return rows


def run_latency(r: redis.Redis, sides: tuple[Side, Side], sizes: Sizes) -> list[Row]:
    (raw50, coord50), (raw99, coord99) = paired(
        "latency p50/p99 ms", sizes.runs, sides, lambda side: latencies(r, side, sizes.latency))
    label = f"enqueue->start ms, idle prefork (N={sizes.latency})"
    return [Row(f"{label} p50", raw50, coord50),
            Row(f"{label} p99", raw99, coord99, ceiling=1.2)]


# ----- report ------------------------------------------------------------------------
def print_table(rows: list[Row]) -> None:
    width = max(len(row.label) for row in rows)
    print(f"\n{'measurement':<{width}}  {'raw Celery':>11}  {'coordinator':>11}  "
          f"{'coord/raw':>9}  target")
    for row in rows:
        ratio = row.coordinator / row.raw
        target = ""
        if row.target is not None:
            target = f">= {row.target:g}x  {'PASS' if ratio >= row.target else 'MISS'}"
        elif row.ceiling is not None:
            target = f"<= {row.ceiling:g}x  {'PASS' if ratio <= row.ceiling else 'MISS'}"
        print(f"{row.label:<{width}}  {row.raw:>11.1f}  {row.coordinator:>11.1f}  "
              f"{ratio:>8.3f}x  {target}".rstrip())


# ----- main --------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 run, 500/5,000/1,000/100 jobs")
    parser.add_argument("--runs", type=int, help="runs per measurement (default 3; 1 if --quick)")
    parser.add_argument("--pools", default="prefork",
                        help=f"comma-separated worker pools for the drain ({','.join(POOLS)})")
    for part in ("enqueue", "bulk", "drain", "latency"):
        parser.add_argument(f"--{part}-jobs", type=int, help=f"jobs per {part} run")
    args = parser.parse_args(argv)
    unknown = set(args.pools.split(",")) - set(POOLS)
    if unknown:
        parser.error(f"unknown pool(s): {', '.join(sorted(unknown))}")
    return args


def sizes_for(args: argparse.Namespace) -> Sizes:
    sizes = Sizes(500, 5_000, 1_000, 100, 1) if args.quick else Sizes(2_000, 20_000, 3_000,
                                                                         300, 3)
    overrides = {"runs": args.runs, "enqueue": args.enqueue_jobs, "bulk": args.bulk_jobs,
                 "drain": args.drain_jobs, "latency": args.latency_jobs}
    return dataclasses.replace(sizes, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sizes_for(args)
    print(f"throughput benchmark: {sizes}, drain pools {args.pools}", flush=True)
    with private_redis() as url:
        configure(url)
        r = redis.Redis.from_url(url)
        sides = make_sides()
        rows = run_enqueue(r, sides, sizes)
        rows += run_drain(r, sides, sizes, args.pools.split(","))
        rows += run_latency(r, sides, sizes)
        r.flushall()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
