"""Where a job's time goes: a cProfile of a ``-P solo`` worker draining no-op jobs,
raw Celery and the coordinator side by side, and of one ``enqueue_many`` call.

A solo worker runs every job in its main process, so one profile holds the
whole per-job path: Celery's consumer reading and decoding the message, the
request, the claim, the job, the finish, logging and signals. Each side gets
the same command line but ``-Q`` (as in ``bench/throughput.py``), runs under
``python -m cProfile`` and is stopped with SIGTERM once every job finished;
only time inside the consumer's event loop counts (start-up is left out), and
the time the loop spends waiting in ``epoll`` is reported apart as idle.

Figures are microseconds per job *under the profiler*, which inflates Python
code more than time spent waiting on Redis, so read them as shares, not as
speeds (``bench/throughput.py`` measures speed)::

    .venv/bin/python bench/hotpath.py [--jobs 3000] [--bulk 20000] [--top 20]

Needs a quiet machine, like every benchmark here.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(ROOT))

from bench.common import stop_process  # noqa: E402
from bench.delays import private_redis, wait_for  # noqa: E402
from bench.throughput import CONCURRENCY, configure, make_sides  # noqa: E402

# pstats keys are (file, line, function); a category is the cumulative time of
# the functions that match it (a match called by a match counts once).
Key = tuple[str, int, str]
Matcher = Callable[[Key], bool]


def _in(path_part: str, *names: str) -> Matcher:
    return lambda key: path_part in key[0] and (not names or key[2] in names)


IDLE = _in("~", "<method 'poll' of 'select.epoll' objects>", "<built-in method select.select>")
BODY = _in("bench/bench_jobs.py", "_noop")
FINISH = _in("queues/store/__init__.py", "finish", "complete")
# measured directly, one after the other; none is called by another
CATEGORIES: tuple[tuple[str, Matcher], ...] = (
    ("claim (JobTask.before_start, claim.lua)", _in("queues/jobs/task.py", "before_start")),
    ("finish (store.finish, finish.lua)", FINISH),
    ("the job's own body", BODY),
    ("logging (Logger.handle, every record)", _in("logging/__init__.py", "handle")),
    ("signals (Signal.send: Django fixup, ...)", _in("celery/utils/dispatch/signal.py", "send")),
    ("redis-py client objects made per call", _in("redis/client.py", "__init__")),
)
CALL = _in("queues/jobs/task.py", "__call__")
REQUEST = _in("queues/jobs/request.py", "__init__")
BASE_REQUEST = _in("celery/worker/request.py", "__init__")


def profile_drain(side_name: str, count: int, out: Path) -> tuple[pstats.Stats, int]:
    """Fill ``count`` jobs, drain them with a profiled solo worker; its stats and count."""
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    side = next(s for s in make_sides() if s.name == side_name)
    r.flushall()
    side.fill(count)
    log = out.with_suffix(".log")
    cmd = [sys.executable, str(ROOT / "bench" / "profiled_worker.py"),
           "-A", "coordinator_project", "worker", "-Q", side.queue, "-P", "solo",
           "-c", str(CONCURRENCY), "-n", "hotpath@%h", "--without-gossip", "--without-mingle",
           "--without-heartbeat", "-l", "INFO"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "JQ_PROFILE_OUT": str(out),
                                                   **side.worker_env},
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: side.finished(r) >= count or proc.poll() is not None,
                 timeout=120 + count / 20, interval=0.05, what=f"{side_name} to drain")
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log.read_text()[-3000:]}")
    finally:
        stop_process(proc)
    if not out.exists():
        raise RuntimeError(f"the worker wrote no profile:\n{log.read_text()[-3000:]}")
    return pstats.Stats(str(out)), side.finished(r)


def cumulative(stats: pstats.Stats, matches: Matcher) -> float:
    """Seconds in functions matching ``matches``, not counting a match called by a match."""
    total = 0.0
    for key, (_cc, _nc, _tt, ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if not matches(key):
            continue
        if not callers:  # entered before the profiler started
            total += ct
        total += sum(row[3] for caller, row in callers.items() if not matches(caller))
    return total


def report_drain(name: str, stats: pstats.Stats, jobs: int) -> dict[str, float]:
    """Per-job microseconds of each category; prints them with their share of busy time."""
    idle = cumulative(stats, IDLE)
    busy = stats.total_tt - idle  # type: ignore[attr-defined]
    seconds = {label: cumulative(stats, matches) for label, matches in CATEGORIES}
    call, request = cumulative(stats, CALL), cumulative(stats, REQUEST)
    # the coordinator's wrappers, less what they call that is counted above
    seconds["JobTask.__call__ around the body and finish"] = (
        call - cumulative(stats, BODY) - cumulative(stats, FINISH) if call else 0.0)
    seconds["JobRequest.__init__ beyond Celery's Request"] = (
        request - cumulative(stats, BASE_REQUEST) if request else 0.0)
    seconds["Celery and kombu: everything else"] = busy - sum(seconds.values())
    print(f"\n{name}: {jobs} jobs, {busy:.2f} s busy and {idle:.2f} s idle in epoll "
          "(under the profiler)")
    for label, value in seconds.items():
        print(f"  {label:<48} {value / jobs * 1e6:8.1f} us/job  {100 * value / busy:5.1f} %")
    return {"busy": busy / jobs * 1e6, **{k: v / jobs * 1e6 for k, v in seconds.items()}}


def top(stats: pstats.Stats, count: int, title: str) -> None:
    print(f"\n--- {title}: top {count} by own time ---")
    stats.sort_stats("tottime").print_stats(count)


def profile_bulk(count: int) -> pstats.Stats:
    from bench.bench_jobs import JOB_NAME, QUEUE
    from queues.jobs import enqueue_many

    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    enqueue_many(QUEUE, JOB_NAME, [{"n": n} for n in range(100)])  # warm: scripts, registry
    r.flushall()
    data = [{"n": n} for n in range(count)]
    profiler = cProfile.Profile()
    profiler.enable()
    enqueue_many(QUEUE, JOB_NAME, data)
    profiler.disable()
    return pstats.Stats(profiler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000, help="jobs per drain (3000)")
    parser.add_argument("--bulk", type=int, default=20000, help="jobs of enqueue_many (20000)")
    parser.add_argument("--top", type=int, default=20, help="functions listed per profile")
    parser.add_argument("--save", type=Path, help="keep the .prof files in this folder")
    args = parser.parse_args(argv)
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="jq-hotpath-") as tmp:
        folder = args.save or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        configure(url)
        rows: dict[str, dict[str, float]] = {}
        for side in ("raw Celery", "coordinator"):
            stats, jobs = profile_drain(side, args.jobs, folder / f"{side.split()[0]}.prof")
            rows[side] = report_drain(f"drain, -P solo, {side}", stats, jobs)
            top(stats, args.top, f"drain {side}")
        raw, coord = rows["raw Celery"], rows["coordinator"]
        print(f"\n{'per job, under the profiler (us)':<48} {'raw':>8} {'coordinator':>12} "
              f"{'added':>8}")
        for label in coord:
            print(f"  {label:<46} {raw[label]:8.1f} {coord[label]:12.1f} "
                  f"{coord[label] - raw[label]:8.1f}")
        bulk = profile_bulk(args.bulk)
        bulk.dump_stats(folder / "enqueue_many.prof")
        total = bulk.total_tt  # type: ignore[attr-defined]
        print(f"\nenqueue_many of {args.bulk}: {total:.2f} s under the profiler, "
              f"{total / args.bulk * 1e6:.1f} us/job")
        top(bulk, args.top, "enqueue_many")
    return 0


if __name__ == "__main__":
    sys.exit(main())
