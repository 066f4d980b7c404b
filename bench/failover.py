"""Redis Sentinel: what ``ENQUEUE_DURABILITY=replica`` costs, and what a failover does.

A primary, a replica and three sentinels on loopback ports (``tests/sentinel_group.py``);
every process reaches Redis through the sentinels. Prints:

1. enqueue cost, alternating rounds: ``enqueue`` one job at a time and ``enqueue_many``
   of 1,000, with ``ENQUEUE_DURABILITY=primary`` and ``replica`` (Redis ``WAIT 1``);
2. per durability, a failover under load: jobs are enqueued as fast as one producer can
   for a few seconds, the primary is SIGKILLed, enqueueing goes on; a prefork worker runs
   them, each run written to a ledger file outside Redis; then acknowledged / completed /
   lost / duplicated / stuck, as ``tests/e2e/test_failover.py`` counts them;
3. how long after the kill each process type works again without a restart: the worker
   (its first job completed), the web process (``/ready`` 200 on the new master, gunicorn)
   and beat (its first recurring run enqueued)::

    .venv/bin/python -m bench.failover [--rounds 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(ROOT))

from bench.common import configure, stop_process  # noqa: E402
from bench.delays import free_port, running_worker, wait_for  # noqa: E402

QUEUE, JOB = "batch-processing", "batch-cleanup"  # the enqueue cost's
LEDGERED = "resilience"  # the failover's: tests.fixtures_tasks' t-ledger writes each run down
DATABASE_URL = "sqlite:////tmp/jq-bench-failover.sqlite3"
LEDGER = Path("/tmp/jq-bench-failover.ledger")


def _settings(group: Any, durability: str) -> Any:
    from django.test import override_settings

    from tests.sentinel_group import MASTER

    return override_settings(
        COORDINATOR_REDIS_SENTINELS=group.sentinels, COORDINATOR_REDIS_SENTINEL_MASTER=MASTER,
        COORDINATOR_REDIS_URL=f"redis://127.0.0.1:{group.primary_port}/0",
        COORDINATOR_ENQUEUE_DURABILITY=durability, COORDINATOR_ENQUEUE_REPLICA_TIMEOUT=1000)


def enqueue_cost(rounds: int) -> None:
    from queues.jobs import enqueue, enqueue_many
    from tests.sentinel_group import sentinel_group

    rates: dict[tuple[str, str], list[float]] = {}
    with sentinel_group() as group:
        for _ in range(rounds):
            for durability in ("primary", "replica"):
                with _settings(group, durability):
                    began = time.perf_counter()
                    for n in range(500):
                        enqueue(QUEUE, JOB, {"batchId": f"o{n}"})
                    one = 500 / (time.perf_counter() - began)
                    began = time.perf_counter()
                    for _ in range(10):
                        enqueue_many(QUEUE, JOB, [{"batchId": f"m{n}"} for n in range(1000)])
                    many = 10_000 / (time.perf_counter() - began)
                rates.setdefault((durability, "enqueue"), []).append(one)
                rates.setdefault((durability, "enqueue_many"), []).append(many)
    print(f"enqueue cost, primary + 1 replica on loopback, median of {rounds} alternating "
          "rounds")
    for call in ("enqueue", "enqueue_many"):
        primary = statistics.median(rates[("primary", call)])
        replica = statistics.median(rates[("replica", call)])
        print(f"  {call:<13} primary {primary:>9,.0f} jobs/s   replica {replica:>9,.0f} jobs/s"
              f"   ({replica / primary:.2f}x)")


@contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc)


def _ready(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as resp:
            return str(json.loads(resp.read()).get("redis_role", ""))
    except (urllib.error.URLError, OSError, ValueError):
        return ""


def failover(durability: str, seconds: float) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from queues import store
    from queues.exceptions import BackendUnavailable
    from queues.jobs import enqueue, task_name
    from queues.store import keys
    from tests.sentinel_group import sentinel_group

    LEDGER.unlink(missing_ok=True)
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="bench beat", defaults={"interval": every, "queue": "maintenance",
                                     "task": task_name("maintenance", "clean-queue"),
                                     "kwargs": json.dumps({"queue": QUEUE})})
    web_port = free_port()
    with sentinel_group() as group, _settings(group, durability):
        env = {**group.env, "DATABASE_URL": DATABASE_URL, "ENQUEUE_DURABILITY": durability,
               "WORKER_STALLED_INTERVAL": "2000"}
        with running_worker(f"failover-{durability}", LEDGERED, env), \
                _process([sys.executable, "-m", "gunicorn", "coordinator_project.wsgi:application",
                          "--bind", f"127.0.0.1:{web_port}", "--workers", "1"], env,
                         Path("/tmp/jq-bench-failover-web.log")), \
                _process([sys.executable, "-m", "celery", "-A", "coordinator_project", "beat",
                          "-l", "INFO"], env, Path("/tmp/jq-bench-failover-beat.log")):
            wait_for(lambda: _ready(web_port) == "master", timeout=30, what="web ready")
            acknowledged, refused = [], 0
            began = time.monotonic()
            killed_at = 0.0
            web_back = beat_back = 0.0
            beat_key = keys.state_index("maintenance", "waiting")
            while time.monotonic() - (killed_at or began) < seconds * (3 if killed_at else 1):
                try:
                    acknowledged.append(enqueue(LEDGERED, "t-ledger",
                                                {"ledger": str(LEDGER)}).id)
                except BackendUnavailable:
                    refused += 1
                    time.sleep(0.005)
                if not killed_at and time.monotonic() - began >= seconds:
                    beat_before = store.client().zcard(beat_key)
                    killed_ms = store.now_ms()
                    killed_at = group.kill_primary()
                if killed_at and not web_back and _ready(web_port) == "master":
                    web_back = time.monotonic() - killed_at
                if killed_at and not beat_back:
                    try:
                        if store.client().zcard(beat_key) > beat_before:
                            beat_back = time.monotonic() - killed_at
                    except redis.RedisError:
                        pass  # no master yet
            group.wait_promoted()
            wait_for(lambda: _drained(acknowledged), timeout=120, what="the jobs to run")
            runs = Counter(line.split()[0] for line in LEDGER.read_text().splitlines())
            missing = [j for j in acknowledged if j not in runs]
            states = store.fields_of_many(LEDGERED, missing, "state") if missing else []
            lost = sum(1 for f in states if f[0] is None)
            after = sorted(int(line.split()[1]) for line in LEDGER.read_text().splitlines()
                           if int(line.split()[1]) > killed_ms)
            worker_back = (after[0] - killed_ms) / 1000 if after else -1
    print(f"failover, ENQUEUE_DURABILITY={durability}: acknowledged {len(acknowledged)}, "
          f"completed {sum(1 for j in acknowledged if j in runs)}, lost {lost}, "
          f"duplicated {sum(1 for j in acknowledged if runs[j] > 1)}, "
          f"stuck {len(missing) - lost}; refused while no master answered {refused}")
    print(f"  working again after the primary's SIGKILL: worker {worker_back:.1f} s, web "
          f"/ready {web_back:.1f} s, beat {beat_back:.1f} s (sentinel down-after 1 s)")


def _drained(acknowledged: list[str]) -> bool:
    from queues import store

    ran = {line.split()[0] for line in LEDGER.read_text().splitlines()} if LEDGER.exists() \
        else set()
    waiting = [j for j in acknowledged if j not in ran]
    return not waiting or all(f[0] is None for f in store.fields_of_many(LEDGERED, waiting,
                                                                           "state"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    Path(DATABASE_URL.removeprefix("sqlite:///")).unlink(missing_ok=True)
    jobs = "coordinator_project.sample_jobs,tests.fixtures_tasks"
    configure({"DATABASE_URL": DATABASE_URL, "JOB_MODULES": jobs,
               "REDIS_URL": "redis://127.0.0.1:1/0"}, "tests.fixtures_tasks")
    from queues.models import QueueType

    QueueType.objects.get_or_create(name=LEDGERED, defaults={
        "display_name": "Failover bench", "stalled_interval_ms": 2000, "max_stalled_count": 20,
        "remove_on_complete": False})
    enqueue_cost(args.rounds)
    for durability in ("primary", "replica"):
        failover(durability, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
