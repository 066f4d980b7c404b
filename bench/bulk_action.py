"""Bulk action benchmark: "Cancel every matching job" on a tab of more than 10,000 jobs.

Enqueues ``--jobs`` delayed jobs (half of them of the type the filter names) on a private
``redis-server``, then does what the dashboard does on "every matching job": the
request (``POST /admin/dashboard/queues/<q>/act`` with ``all=1``, through Django's
test client) only starts the ``bulk-action`` job on the maintenance queue; a real
``celery worker`` on that queue walks the tab, cancels the matches a chunk at a time
(each through ``cancel_job``, audited) and reports its progress. Prints the request's
time, the job's time and rate, and checks that exactly the matching jobs were
cancelled and audited::

    .venv/bin/python -m bench.bulk_action [--jobs N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(ROOT))

from bench.delays import running_worker, sample_jobs_on_private_redis, wait_for  # noqa: E402

QUEUE = "photo-processing"
DATABASE_URL = "sqlite:////tmp/jq-bench-bulk.sqlite3"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=24_000)
    args = parser.parse_args(argv)
    with sample_jobs_on_private_redis(DATABASE_URL):
        return run(args.jobs)


def run(count: int) -> int:
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    from deadletter.models import AuditEvent
    from queues.jobs import enqueue_many, get_job
    from queues.ops import manager

    half = count // 2
    for kind in ("generate-thumbnails", "extract-metadata"):
        for start in range(0, half, 5000):
            enqueue_many(QUEUE, kind, [{"photoId": f"p{n}"} for n in
                                       range(start, min(start + 5000, half))],
                         delay_ms=3_600_000)
    user = User.objects.create_user("bench", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="queues", codename__in=["view_dashboard", "manage_jobs"]))
    client = Client()
    client.force_login(user)
    began = time.perf_counter()
    reply = client.post(f"/admin/dashboard/queues/{QUEUE}/act", {
        "action": "cancel", "all": "1", "state": "delayed", "type": "generate-thumbnails"})
    request_ms = (time.perf_counter() - began) * 1000
    assert reply.status_code == 303, reply.content
    bulk_id = reply["Location"].rstrip("/").rsplit("/", 1)[1]
    with running_worker("bulk", "maintenance", {"DATABASE_URL": DATABASE_URL}):
        began = time.perf_counter()
        progress = []

        def finished() -> bool:
            info = get_job("maintenance", bulk_id)
            progress.append(info.progress)
            return info.state in {"completed", "failed"}

        wait_for(finished, timeout=1800, what="the bulk job", interval=0.5)
        job_s = time.perf_counter() - began
    info = get_job("maintenance", bulk_id)
    counts = manager.queue_status(QUEUE).job_counts
    audited = AuditEvent.objects.filter(action="cancel_job").count()
    print(f"{count} delayed jobs, {half} of the filtered type")
    print(f"request (starts the maintenance job): {request_ms:.0f} ms")
    print(f"bulk job: {info.state}, {job_s:.1f} s, {half / job_s:,.0f} jobs/s, "
          f"progress seen {sorted(set(progress))[:3]}...{max(progress)}")
    print(f"result {info.result}; cancelled {counts['cancelled']}, still delayed "
          f"{counts['delayed']}, cancel_job audit events {audited}")
    ok = (info.state == "completed" and counts["cancelled"] == half
          and counts["delayed"] == count - half and audited == half)
    print("OK" if ok else "WRONG")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
