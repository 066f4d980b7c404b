"""The coordinator's main job, for a newcomer: every process plus a sample workload.

Starts the web process (admin, :3000), one worker per built-in queue type,
beat and Flower (:5555); enqueues a workload of the design's job types; shows
a live table of per-queue counts. ``manage.py demo`` is the entry point.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".run" / "logs"
CELERY = [sys.executable, "-m", "celery", "-A", "coordinator_project"]
QUEUES = ("photo-processing", "batch-processing", "maintenance")

PROCESSES: dict[str, list[str]] = {
    "web": [sys.executable, "-m", "gunicorn", "coordinator_project.wsgi:application",
            "--bind", "127.0.0.1:3000", "--workers", "2"],
    "worker-photo": [*CELERY, "worker", "-Q", "photo-processing", "-c", "2",
                     "-n", "photo@%h", "-E", "-l", "INFO"],
    "worker-batch": [*CELERY, "worker", "-Q", "batch-processing", "-c", "1",
                     "-n", "batch@%h", "-E", "-l", "INFO"],
    "worker-maintenance": [*CELERY, "worker", "-Q", "maintenance", "-c", "1",
                           "-n", "maintenance@%h", "-E", "-l", "INFO"],
    "beat": [*CELERY, "beat", "-l", "INFO", "--pidfile", ""],
    "flower": [*CELERY, "flower", "--port=5555", "--address=127.0.0.1"],
}


@dataclass
class Supervisor:
    """Starts the demo's processes and stops them all on the way out."""

    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_all(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "CELERY_TASK_EVENTS": "true"}
        for name, cmd in PROCESSES.items():
            log = (LOG_DIR / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def dead(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def sample_photo(n: int) -> dict[str, Any]:
    """A §4.1 PhotoProcessingJob payload."""
    return {
        "photoId": f"photo-{n}",
        "storage": {"s3Key": f"uploads/{n}.jpg", "bucket": "photos", "originalSize": 2_000_000,
                    "mimeType": "image/jpeg"},
        "pipeline": {"name": "standard", "stages": [{"name": s} for s in
                                                    ("validate", "resize", "compress", "store")]},
        "context": {"clientId": "demo", "uploadedAt": "2026-01-01T00:00:00Z",
                    "traceId": uuid.uuid4().hex},
        "metadata": {"fileSize": 2_000_000, "originalFilename": f"IMG_{n}.jpg"},
    }


def enqueue_workload(size: int) -> int:
    """Enqueue the sample workload; returns how many jobs were accepted."""
    from queues.jobs import enqueue, enqueue_many

    photos = [sample_photo(n) for n in range(size)]
    count = len(enqueue_many("photo-processing", "process-photo", photos))
    for n in range(size // 2):
        enqueue("photo-processing", "generate-thumbnails", {"photoId": f"photo-{n}"},
                priority=random.randint(0, 9))
        # Some jobs wait in Redis first: broker-side delays, never Celery ETA.
        enqueue("photo-processing", "extract-metadata", {"photoId": f"photo-{n}"},
                delay_ms=random.randint(0, 8000))
        count += 2
    for b in range(max(1, size // 20)):
        ids = [f"photo-{n}" for n in range(b * 10, b * 10 + 10)]
        enqueue("batch-processing", "batch-process", {
            "batchId": f"batch-{b}", "photoIds": ids, "batchSize": len(ids),
            "pipeline": "standard", "clientId": "demo"})
        enqueue("batch-processing", "batch-cleanup", {"batchId": f"batch-{b}"})
        count += 2
    return count


def status_table() -> tuple[str, int]:
    """A compact table of per-queue counts, and the number of unfinished jobs."""
    from queues.manager import queue_status, totals

    lines = [f"{'queue':18} {'wait':>6} {'active':>6} {'delay':>6} {'done':>7} {'failed':>6} "
             f"{'workers':>7} {'jobs/min':>8}"]
    unfinished = 0
    for name in QUEUES:
        st, tot = queue_status(name), totals(name)
        c = st.job_counts
        unfinished += c["waiting"] + c["active"] + c["delayed"]
        lines.append(f"{name:18} {c['waiting']:>6} {c['active']:>6} {c['delayed']:>6} "
                     f"{tot['completed']:>7} {tot['failed']:>6} {st.workers:>7} "
                     f"{st.processing_rate:>8.1f}")
    return "\n".join(lines), unfinished


def watch(out: TextIO, *, exit_when_done: bool, alive: Callable[[], list[str]]) -> int:
    """Redraw the table every second; return an exit code when told to stop."""
    tty = out.isatty()
    while True:
        table, unfinished = status_table()
        if tty:
            out.write("\x1b[H\x1b[J")
        out.write(f"{time.strftime('%H:%M:%S')}  admin http://127.0.0.1:3000/admin/  "
                  f"flower http://127.0.0.1:5555/  logs {LOG_DIR}\n{table}\n")
        out.flush()
        dead = alive()
        if dead:
            out.write(f"process(es) exited: {', '.join(dead)}; see {LOG_DIR}\n")
            return 1
        if exit_when_done and unfinished == 0:
            out.write("sample workload done\n")
            return 0
        time.sleep(1)


def demo_token() -> str:
    """A one-hour token with every scope, for trying the ops API with curl."""
    from queues import auth
    from queues.exceptions import ConfigurationError

    try:
        return auth.mint("demo", ["queues:view", "queues:enqueue", "queues:manage"])
    except ConfigurationError as exc:
        return f"(none: {exc})"
