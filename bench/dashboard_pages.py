"""Dashboard page benchmark: a queue's page of jobs on a queue of 1,000,000 jobs.

Fills a private ``redis-server`` with one queue type's indexes in the store's layout:
``--jobs`` completed job ids in the completed index, and ``--waiting`` waiting jobs as
messages in two broker lists (priority 0 and 5, half each), so a middle page of the
waiting tab spans both. Job records are written for the jobs on the pages requested
(reading a hash costs the same whatever else Redis holds). Then it times
``GET /admin/dashboard/queues/<queue>/?state=...&page=...`` through Django's test
client, the whole view (the queue's figures, the page, the template), for the
first, a middle and the last page of each tab, and prints p50/p99 against the
300 ms target (the exit status follows it)::

    .venv/bin/python -m bench.dashboard_pages [--jobs N] [--waiting N] [--requests N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(ROOT))

from bench.delays import percentile, private_redis  # noqa: E402
from bench.metrics_scrape import configure  # noqa: E402

QUEUE = "bench-pages"
PER_PAGE = 50
TARGET_MS = 300.0
CHUNK = 10_000


def fill(r: redis.Redis, completed: int, waiting: int) -> list[str]:
    """The indexes and broker lists; returns the broker list names by priority."""
    from celery import current_app

    from queues.jobs.messages import broker_keys
    from queues.store import keys

    now = int(time.time() * 1000)
    index = keys.state_index(QUEUE, "completed")
    for start in range(0, completed, CHUNK):
        r.zadd(index, {f"c{n}": now - n for n in range(start, min(start + CHUNK, completed))})
    lists = broker_keys(current_app, QUEUE)
    for priority, first in ((0, 0), (5, waiting // 2)):
        count = waiting // 2 if priority == 0 else waiting - waiting // 2
        for start in range(first, first + count, CHUNK):
            r.lpush(lists[priority], *(
                json.dumps({"headers": {"jq_job": f"w{n}", "jq_gen": 1},
                            "properties": {"delivery_info": {"routing_key": QUEUE}}})
                for n in range(start, min(start + CHUNK, first + count))))
        r.zadd(keys.state_index(QUEUE, "waiting"),
               {f"w{n}": now for n in range(first, first + count)})
    return lists


def write_records(r: redis.Redis, ids: list[str], state: str) -> None:
    from queues.store import keys

    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hset(keys.job(QUEUE, job_id), mapping={
            "id": job_id, "name": "resize", "state": state, "gen": 1, "priority": 0,
            "created_at": 1, "runnable_at": 1, "attempts_made": 1, "max_attempts": 3,
            "finished_at": 2})
    pipe.execute()


def pages_to_read(state: str, total: int) -> list[int]:
    last = max(1, -(-total // PER_PAGE))
    return sorted({1, last // 2 + 1, last})


def records_for(r: redis.Redis, state: str, page: int) -> None:
    """Write the records of the jobs that ``page`` of ``state`` shows."""
    from celery import current_app

    from queues.jobs.messages import broker_keys
    from queues.store import broker, queue_state

    if state == "waiting":
        _, found = broker.next_to_run(broker_keys(current_app, QUEUE), (page - 1) * PER_PAGE,
                                      PER_PAGE)
        ids = [job_id for job_id, _gen, _priority in found]
    else:
        _, pairs = queue_state.index_page(QUEUE, state, (page - 1) * PER_PAGE, PER_PAGE,
                                          newest_first=True)
        ids = [job_id for job_id, _score in pairs]
    write_records(r, ids, state)


def time_page(client: object, state: str, page: int, requests: int) -> list[float]:
    url = f"/admin/dashboard/queues/{QUEUE}/"
    took = []
    for _ in range(requests + 1):
        started = time.perf_counter()
        reply = client.get(url, {"state": state, "page": str(page)})  # type: ignore[attr-defined]
        took.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 200, reply.status_code
        assert reply.content.count(b"<tr data-job=") > 0, f"{state} page {page} shows no job"
    return sorted(took[1:])  # the first request warms the templates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="completed jobs")
    parser.add_argument("--waiting", type=int, default=200_000, help="waiting jobs")
    parser.add_argument("--requests", type=int, default=30, help="requests per page")
    args = parser.parse_args(argv)
    with private_redis() as url:
        configure(url)
        from django.contrib.auth.models import User
        from django.test import Client

        from queues.ops.manager import create_queue

        r = redis.Redis.from_url(url)
        create_queue(QUEUE, {"job_types": ["resize"]}, actor="bench")
        started = time.monotonic()
        fill(r, args.jobs, args.waiting)
        print(f"filled {args.jobs:,} completed and {args.waiting:,} waiting jobs "
              f"({r.info('memory')['used_memory_human']}) in {time.monotonic() - started:.1f} s")
        client = Client()
        client.force_login(User.objects.create_superuser("bench", password="pw"))
        passed = True
        for state, total in (("completed", args.jobs), ("waiting", args.waiting)):
            for page in pages_to_read(state, total):
                records_for(r, state, page)
                took = time_page(client, state, page, args.requests)
                p50, p99 = percentile(took, 50), percentile(took, 99)
                verdict = "PASS" if p99 < TARGET_MS else "MISS"
                passed = passed and verdict == "PASS"
                print(f"{state:<9} page {page:>6,}: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
                      f"(target p99 < {TARGET_MS:.0f} ms): {verdict}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
