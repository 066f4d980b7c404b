"""How much one Redis carries through the coordinator: CPU per job, jobs/s, bytes per job.

Redis runs one command at a time on one core, so its capacity is one core divided by
the CPU each job costs it. On a private ``redis-server`` this measures, from the
server process's own CPU time (``psutil``):

1. **Real workers**: 2 prefork workers (-c 4 each) drain ``--jobs`` no-op jobs enqueued
   with ``enqueue_many``: Redis CPU per job for the whole path (enqueue, kombu's
   delivery and ack bookkeeping, the claim and finish scripts), and the jobs/s reached
   (here bounded by the workers' CPU, not by Redis's).
2. **Redis alone under load**: 1 to ``--clients`` processes each loop
   ``enqueue_many`` (100) → pop → claim → finish as fast as they can (no Celery around
   the scripts); jobs/s and Redis's CPU share at each step, to show where it saturates.
3. **Memory**: ``used_memory`` before and after 100,000 waiting jobs and 100,000
   delayed jobs (a small payload), in bytes per job.

and prints what tells an operator when to add a shard::

    .venv/bin/python -m bench.capacity [--jobs 4000] [--clients 3]

Needs a quiet machine, like every benchmark here; on a 2-core machine the client
processes compete with Redis for CPU, so part 2's top figure is a floor.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(ROOT))

from bench.delays import private_redis, wait_for  # noqa: E402
from bench.throughput import configure  # noqa: E402

PER_CALL = 100
MEMORY_JOBS = 100_000


def _redis_process(url: str) -> psutil.Process:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for proc in psutil.process_iter(["name", "cmdline"]):
        if "redis-server" in (proc.info["name"] or "") and \
                any(f":{port}" in part or part == str(port) for part in proc.info["cmdline"] or []):
            return proc
    raise RuntimeError(f"no redis-server on port {port}")


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def real_workers(url: str, jobs: int) -> float:
    """Redis CPU µs per job with real workers; prints the figures."""
    from bench.bench_jobs import COUNT_KEY, JOB_NAME, QUEUE
    from bench.delays import Worker
    from queues import store
    from queues.jobs import enqueue_many

    redis_proc = _redis_process(url)
    workers = [Worker(f"capacity-{n}", QUEUE) for n in range(2)]
    try:
        for worker in workers:
            worker.wait_ready()
        cpu0, began = _cpu(redis_proc), time.perf_counter()
        for start in range(0, jobs, 1000):
            enqueue_many(QUEUE, JOB_NAME, [{"n": n} for n in range(start, min(start + 1000, jobs))],
                         remove_on_complete=True)
        wait_for(lambda: int(store.client().get(COUNT_KEY) or 0) >= jobs, timeout=600,
                 what="the jobs to drain", interval=0.05)
        elapsed, cpu = time.perf_counter() - began, _cpu(redis_proc) - cpu0
    finally:
        for worker in workers:
            worker.stop()
    per_job = cpu / jobs * 1e6
    print(f"real workers (2 prefork workers, -c 4 each), {jobs} no-op jobs: "
          f"{jobs / elapsed:,.0f} jobs/s, Redis CPU {cpu / elapsed:.0%} of a core, "
          f"{per_job:.0f} µs of Redis CPU per job (enqueue + delivery + claim + finish + ack)")
    return per_job


def _client_loop(url: str, begin_at: float, seconds: float, done: Any) -> None:
    os.environ["REDIS_URL"] = url
    import django

    django.setup()
    from celery import current_app

    import bench.bench_jobs  # noqa: F401  (declares the job)
    from bench.bench_jobs import JOB_NAME, QUEUE
    from queues import store
    from queues.jobs import enqueue_many
    from queues.jobs.messages import broker_keys

    cli, lists = store.client(), broker_keys(current_app, QUEUE)
    time.sleep(max(0.0, begin_at - time.time()))  # every client starts together
    count, end = 0, begin_at + seconds
    while time.time() < end:
        enqueue_many(QUEUE, JOB_NAME, [{"n": n} for n in range(PER_CALL)],
                     remove_on_complete=True)
        for _ in range(PER_CALL):
            raw = next(item for key in lists if isinstance(item := cli.rpop(key), bytes))
            headers = json.loads(raw)["headers"]
            token = f"{os.getpid()}-{count}"
            store.claim(QUEUE, headers["jq_job"], gen=int(headers["jq_gen"]), token=token,
                        worker="capacity@bench")
            store.complete(QUEUE, headers["jq_job"], token=token, worker="capacity@bench",
                           result="null")
            count += 1
    with done.get_lock():
        done.value += count


def redis_alone(url: str, clients: int, seconds: float = 5.0) -> list[tuple[int, float, float]]:
    """(clients, jobs/s, Redis CPU share) per step."""
    redis_proc = _redis_process(url)
    steps = []
    ctx = multiprocessing.get_context("spawn")
    for n in range(1, clients + 1):
        done = ctx.Value("l", 0)
        begin_at = time.time() + 4  # after each client's django.setup()
        procs = [ctx.Process(target=_client_loop, args=(url, begin_at, seconds, done))
                 for _ in range(n)]
        for proc in procs:
            proc.start()
        time.sleep(max(0.0, begin_at - time.time()))
        cpu0 = _cpu(redis_proc)
        time.sleep(seconds)
        share = (_cpu(redis_proc) - cpu0) / seconds
        for proc in procs:
            proc.join()
        rate = done.value / seconds
        steps.append((n, rate, share))
        print(f"  {n} client process(es): {rate:,.0f} jobs/s, Redis CPU {share:.0%} of a core "
              f"({share / max(rate, 1) * 1e6:.0f} µs per job)")
    return steps


def memory(url: str) -> tuple[float, float]:
    """Bytes of Redis memory per waiting job and per delayed job."""
    from bench.bench_jobs import JOB_NAME, QUEUE
    from queues import store
    from queues.jobs import enqueue_many

    def used() -> int:
        return int(store.client().info("memory")["used_memory"])

    store.client().flushall()
    per: list[float] = []
    for options in ({}, {"delay_ms": 3_600_000}):
        base = used()
        for start in range(0, MEMORY_JOBS, 1000):
            enqueue_many(QUEUE, JOB_NAME, [{"photoId": f"photo-{n:08d}"}
                                           for n in range(start, start + 1000)], **options)
        per.append((used() - base) / MEMORY_JOBS)
        store.client().flushall()
    return per[0], per[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args(argv)
    with private_redis() as url:
        configure(url)
        per_job = real_workers(url, args.jobs)
        print("Redis alone, the scripts' path without Celery:")
        steps = redis_alone(url, args.clients)
        waiting, delayed = memory(url)
    top = max(steps, key=lambda s: s[1])
    core = 1e6 / per_job
    print(f"memory: {waiting:,.0f} bytes per waiting job, {delayed:,.0f} bytes per delayed job "
          f"(payload of ~25 bytes; add the payload's size)")
    print("\nwhen to add a shard (one Redis = one core):")
    print(f"  through real workers each job costs Redis {per_job:.0f} µs of CPU: one core "
          f"carries about {core:,.0f} jobs/s; plan a shard per {0.7 * core:,.0f} jobs/s "
          f"(70 % of a core)")
    print(f"  measured without Celery: {top[1]:,.0f} jobs/s with Redis at {top[2]:.0%} of a "
          f"core ({top[0]} client processes on this machine)")
    print(f"  1 GB of Redis holds about {1e9 / waiting:,.0f} waiting or {1e9 / delayed:,.0f} "
          "delayed jobs of this size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
