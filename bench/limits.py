"""What flow control costs on the claim path, and how much of a limit real workers use.

Part 1, the claim path: jobs are enqueued, then this process plays the worker,
popping each message as kombu does and running the claim and finish scripts
(``store.claim`` / ``store.complete``), on a private ``redis-server``. Three sides
run in alternating rounds on the same queue: no limits; limits that never bind
(a global concurrency, a rate limit and per-group limits far above the load, so
every job goes through the gate, every claim checks and counts, every finish
pumps); and plain jobs of a grouped enqueue. Prints microseconds per job (enqueue
apart from claim + finish) and the ratio to no limits.

Part 2, real workers (prefork, -c 4 each): the jobs running on average under a
global concurrency of 4 on two workers, side by side with one worker of 4 processes
and no limits; the rate reached under a binding rate limit and the most starts seen
in any window; how long a limit raised at runtime took to be used; and how many
claims were refused (a job the gate let out is never refused; a refusal is a
message that reached a worker around the gate)::

    .venv/bin/python -m bench.limits [--jobs 5000] [--rounds 3] [--skip-workers]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(ROOT))

from bench.delays import running_worker, sample_jobs_on_private_redis, wait_for  # noqa: E402

QUEUE = "batch-processing"
JOB = "batch-cleanup"  # ~20 ms of work
LONG = "batch-process"  # 15 ms per photo
DATABASE_URL = "sqlite:////tmp/jq-bench-limits.sqlite3"
KEEP = {"remove_on_complete": False}  # the figures are read from the finished records
LOOSE = {"concurrency": 1_000_000, "rate_limit": {"max": 1_000_000, "duration_ms": 1000},
         "group_concurrency": 1_000_000,
         "group_rate_limit": {"max": 1_000_000, "duration_ms": 1000}}


def _drain(count: int) -> float:
    """Pop, claim and finish ``count`` jobs in this process; seconds taken."""
    from celery import current_app

    from queues import store
    from queues.jobs.messages import broker_keys

    cli = store.client()
    lists = broker_keys(current_app, QUEUE)
    began = time.perf_counter()
    for n in range(count):
        raw = next(item for key in lists if isinstance(item := cli.rpop(key), bytes))
        headers = json.loads(raw)["headers"]
        token = f"t{n}"
        claim = store.claim(QUEUE, headers["jq_job"], gen=int(headers["jq_gen"]), token=token,
                            worker="bench@host")
        assert claim.claimed, claim
        assert store.complete(QUEUE, headers["jq_job"], token=token, worker="bench@host",
                              result="null")
    return time.perf_counter() - began


def _side(name: str, count: int) -> tuple[float, float]:
    """(enqueue, claim + finish) seconds for ``count`` jobs of side ``name``."""
    from queues.jobs import enqueue_many
    from queues.ops import limits

    limits.set_limits(QUEUE, LOOSE if name != "off" else {})
    options: dict[str, Any] = {"group": "tenant-a"} if name == "on, grouped" else {}
    began = time.perf_counter()
    for start in range(0, count, 1000):
        enqueue_many(QUEUE, JOB, [{"batchId": f"r{n}"} for n in
                                  range(start, min(start + 1000, count))], **options)
    enqueued = time.perf_counter() - began
    return enqueued, _drain(count)


def claim_path(count: int, rounds: int) -> None:
    sides = ("off", "on", "on, grouped")
    times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    for _ in range(rounds):
        for side in sides:
            times[side].append(_side(side, count))
    base = statistics.median(t[1] for t in times["off"])
    print(f"claim path, {count} jobs per round, median of {rounds} alternating rounds")
    print(f"{'limits':<14}{'enqueue µs/job':>16}{'claim+finish µs/job':>22}{'ratio':>8}")
    for side in sides:
        enq = statistics.median(t[0] for t in times[side]) / count * 1e6
        drain = statistics.median(t[1] for t in times[side])
        print(f"{side:<14}{enq:>16.1f}{drain / count * 1e6:>22.1f}{drain / base:>8.2f}x")


def _spans(handles: list[Any]) -> list[tuple[int, int]]:
    from queues import store

    rows = store.fields_of_many(QUEUE, [h.id for h in handles], "processed_at", "finished_at")
    return [(int(a or 0), int(b or 0)) for a, b in rows]


def _done(handles: list[Any]) -> bool:
    return all(end for _, end in _spans(handles))


def _utilisation(tag: str) -> float:
    """Average jobs running while 400 jobs of ~20 ms drain."""
    from queues.jobs import enqueue_many

    handles = enqueue_many(QUEUE, JOB, [{"batchId": f"{tag}{n}"} for n in range(400)], **KEEP)
    wait_for(lambda: _done(handles), timeout=120, what=f"{tag} jobs")
    spans = _spans(handles)
    busy = sum(end - start for start, end in spans)
    return busy / (max(end for _, end in spans) - min(start for start, _ in spans))


def with_workers(count: int) -> None:
    from queues import store
    from queues.jobs import enqueue_many
    from queues.ops import limits
    from queues.store import keys
    from queues.store.replies import text

    env = {"DATABASE_URL": DATABASE_URL}
    with running_worker("limits-1", QUEUE, env):
        limits.set_limits(QUEUE, {})
        alone = _utilisation("u")
    with running_worker("limits-1", QUEUE, env), running_worker("limits-2", QUEUE, env):
        limits.set_limits(QUEUE, {"concurrency": 4})
        gated = _utilisation("c")
        print(f"400 jobs of ~20 ms, 4 at a time: one worker -c 4 without limits runs "
              f"{alone:.2f} on average; two workers -c 4 under a global concurrency of 4 "
              f"run {gated:.2f} ({gated / alone:.0%} of it, {gated / 4:.0%} of the limit)")

        limits.set_limits(QUEUE, {"rate_limit": {"max": 50, "duration_ms": 1000}})
        handles = enqueue_many(QUEUE, JOB, [{"batchId": f"a{n}"} for n in range(count)],
                               **KEEP)
        wait_for(lambda: _done(handles), timeout=count / 50 + 60, what="rate-limited jobs")
        starts = sorted(start for start, _ in _spans(handles))
        most = max(sum(1 for s in starts if first <= s < first + 1000) for first in starts)
        rate = len(starts) / ((starts[-1] - starts[0] + 1000) / 1000)
        print(f"rate limit 50/s, {count} jobs, 2 workers: {rate:.1f} jobs/s "
              f"({rate / 50:.0%} of the limit), at most {most} starts in any 1,000 ms")

        limits.set_limits(QUEUE, {"concurrency": 1})
        photos = [f"p{n}" for n in range(200)]  # ~3 s each
        handles = enqueue_many(QUEUE, LONG, [
            {"batchId": f"l{n}", "photoIds": photos, "batchSize": 200, "pipeline": "bench",
             "clientId": "bench"} for n in range(8)], **KEEP)
        active = keys.state_index(QUEUE, "active")
        wait_for(lambda: store.client().zcard(active) == 1, timeout=30, what="one active")
        changed = time.perf_counter()
        limits.set_limits(QUEUE, {"concurrency": 4})
        wait_for(lambda: store.client().zcard(active) == 4, timeout=30, what="four active")
        print(f"concurrency raised 1 -> 4 at runtime: used after "
              f"{(time.perf_counter() - changed) * 1000:.0f} ms")
        stats = {text(k): int(v) for k, v in store.client().hgetall(keys.stats(QUEUE)).items()}
        refused = sum(v for k, v in stats.items() if k.startswith("refused_"))
        print(f"claims refused by a limit over the whole run: {refused}")
        wait_for(lambda: _done(handles), timeout=60, what="the long jobs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-workers", action="store_true")
    args = parser.parse_args(argv)
    with sample_jobs_on_private_redis(DATABASE_URL):
        claim_path(args.jobs, args.rounds)
        if not args.skip_workers:
            with_workers(500)
    return 0


if __name__ == "__main__":
    sys.exit(main())
