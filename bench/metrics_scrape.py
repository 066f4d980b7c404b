"""Scrape benchmark: ``GET /metrics`` content for 50 queues and 1,000,000 recorded jobs.

Fills a private ``redis-server`` with what the coordinator keeps for that many
jobs and that a scrape reads: per queue, the state indexes (sorted sets of
job ids, ZADDed in bulk), the all-time stats hash in the transition scripts'
layout (``<metric>|<job type>`` counters and per-bucket duration counts), the
paused flag and live worker presence. Job record hashes are not written: a
scrape never reads them. The queues are registered as queue types in a
private SQLite file, as in production.

Then it times ``--scrapes`` renders of the collector's exposition
(``queues.ops.metrics.render``: the Redis reads plus ``generate_latest``), as the
process is and again after ``gc.freeze()``, and prints p50/p99 against the
100 ms target (the exit status follows the first)::

    .venv/bin/python -m bench.metrics_scrape [--scrapes N] [--queues N] [--jobs N]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(ROOT))

from bench.delays import percentile, private_redis  # noqa: E402

DATABASE = Path("/tmp/jq-bench-metrics.sqlite3")
JOB_TYPES = ("resize", "thumbnail", "extract-metadata", "notify")
# Where a queue's jobs are, as shares (the finished ones are most of them).
STATE_SHARES = {"completed": 0.80, "failed": 0.04, "waiting": 0.10, "delayed": 0.04,
                "active": 0.02}
BOUNDS = ("5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000",
          "30000", "60000", "300000", "+Inf")
TARGET_MS = 100.0
ZADD_CHUNK = 10_000


def configure(redis_url: str) -> None:
    """Environment for this process, a fresh migrated SQLite file, then ``django.setup()``."""
    DATABASE.unlink(missing_ok=True)
    os.environ.update({
        "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{DATABASE}",
        "DJANGO_SETTINGS_MODULE": "coordinator_project.settings",
    })
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()


def queue_names(count: int) -> list[str]:
    return [f"bench-{n:02d}" for n in range(count)]


def register(names: list[str]) -> None:
    from queues.ops.manager import create_queue

    for name in names:
        create_queue(name, {"job_types": list(JOB_TYPES)}, actor="bench")


def _ids(queue: str, start: int, count: int) -> Iterator[dict[str, float]]:
    """Members for ZADD in chunks: job ids scored by a plausible time."""
    now = time.time() * 1000
    for offset in range(start, start + count, ZADD_CHUNK):
        stop = min(offset + ZADD_CHUNK, start + count)
        yield {f"{queue}:{n}": now - n for n in range(offset, stop)}


def fill_indexes(r: redis.Redis, queue: str, jobs: int) -> dict[str, int]:
    """ZADD the queue's ``jobs`` ids into its state indexes; returns the count per state."""
    from queues.store import keys

    counts = {state: int(jobs * share) for state, share in STATE_SHARES.items()}
    counts["completed"] += jobs - sum(counts.values())
    pipe, start = r.pipeline(transaction=False), 0
    for state, count in counts.items():
        for chunk in _ids(queue, start, count):
            pipe.zadd(keys.state_index(queue, state), chunk)
        start += count
    pipe.execute()
    return counts


def stats_fields(counts: dict[str, int], rng: random.Random) -> dict[FieldT, EncodableT]:
    """The stats hash the transition scripts would have written for these jobs."""
    per_type = len(JOB_TYPES)
    total = sum(counts.values())
    fields: dict[FieldT, EncodableT] = {
        "scheduled": total, "completed": counts["completed"], "failed": counts["failed"],
        "scaling_events": rng.randint(0, 40)}
    for job in JOB_TYPES:
        finished = (counts["completed"] + counts["failed"]) // per_type
        fields |= {f"scheduled|{job}": total // per_type,
                   f"completed|{job}": counts["completed"] // per_type,
                   f"failed|{job}": counts["failed"] // per_type,
                   f"retries|{job}": counts["failed"] // per_type * 2,
                   f"stalled|{job}": rng.randint(0, 20),
                   f"duration_sum|{job}": finished * rng.randint(50, 900)}
        weights = [rng.random() for _ in BOUNDS]
        for bound, weight in zip(BOUNDS, weights, strict=True):
            fields[f"duration|{job}|{bound}"] = int(finished * weight / sum(weights))
    fields |= {f"retry_attempt:{n}": rng.randint(1, 900) for n in range(1, 4)}
    fields |= {f"retry_error:{e}": rng.randint(1, 900) for e in ("TimeoutError", "OSError")}
    return fields


def fill(r: redis.Redis, names: list[str], jobs: int) -> int:
    """Write every queue's indexes, stats, flags and worker presence; returns jobs written."""
    from queues.store import keys

    rng, written = random.Random(6), 0
    now_ms = int(time.time() * 1000)
    for i, queue in enumerate(names):
        share = jobs // len(names) + (1 if i < jobs % len(names) else 0)
        counts = fill_indexes(r, queue, share)
        written += sum(counts.values())
        pipe = r.pipeline(transaction=False)
        pipe.hset(keys.stats(queue), mapping=stats_fields(counts, rng))
        pipe.sadd(keys.known_queues(), queue)
        if i % 10 == 0:
            pipe.hset(keys.meta(queue), "paused", "1")
        pipe.zadd(keys.queue_workers(queue), {f"w{n}@bench": now_ms for n in range(3)})
        pipe.execute()
    return written


def time_scrapes(count: int) -> tuple[list[float], int, int]:
    """Milliseconds per render, sorted; plus the size of the last one (bytes, samples)."""
    from queues.ops import metrics

    body = metrics.render()  # warm-up: imports, registry snapshot, script cache
    took = []
    for _ in range(count):
        started = time.perf_counter()
        body = metrics.render()
        took.append((time.perf_counter() - started) * 1000)
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return sorted(took), len(body), samples


def report(label: str, took: list[float]) -> bool:
    """Print one line of figures; True when p99 is within the target."""
    p50, p99 = percentile(took, 50), percentile(took, 99)
    verdict = "PASS" if p99 < TARGET_MS else "MISS"
    print(f"{label:<28} p50 {p50:5.1f} ms  p99 {p99:5.1f} ms  max {took[-1]:5.1f} ms  "
          f"(target p99 < {TARGET_MS:.0f} ms): {verdict}")
    return verdict == "PASS"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with private_redis() as url:
        configure(url)
        r = redis.Redis.from_url(url)
        names = queue_names(args.queues)
        started = time.monotonic()
        register(names)
        jobs = fill(r, names, args.jobs)
        print(f"filled {jobs:,} jobs in {args.queues} queues x {len(JOB_TYPES)} job types "
              f"({r.dbsize():,} keys, {r.info('memory')['used_memory_human']}) "
              f"in {time.monotonic() - started:.1f} s")
        took, size, samples = time_scrapes(args.scrapes)
        # A full collection of this process's heap (Django, Celery: ~90k objects)
        # costs tens of ms and lands on whichever request allocates; frozen
        # start-up objects are not scanned again (what a web process can do
        # with gc.freeze() once loaded).
        gc.freeze()
        frozen, _, _ = time_scrapes(args.scrapes)
    print(f"scrape: {args.scrapes} renders, {size:,} bytes, {samples:,} samples each")
    passed = report("as the process is", took)
    report("after gc.freeze() at start", frozen)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
