"""The coordinator's main job, for a newcomer: every process plus a sample workload.

Starts the web process (admin, :3000), one worker per built-in queue type,
beat and Flower (:5555); enqueues a workload of the design's job types; shows
a live table of per-queue counts. ``manage.py demo`` is the entry point.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".run" / "logs"
# The ops-API token, for ``curl -H "Authorization: Bearer $(cat .run/demo-token)"``.
TOKEN_FILE = ROOT / ".run" / "demo-token"
# queue_status's window; the demo's jobs/min spans at most this much.
RATE_WINDOW_S = 300.0
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

    flower_auth: str  # user:password; Flower refuses to start without one
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_all(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "CELERY_TASK_EVENTS": "true",
               "FLOWER_BASIC_AUTH": self.flower_auth}
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


def flower_credentials() -> str:
    """The Flower login (``user:password``) the demo passes: the configured one, or a new one."""
    configured = settings.FLOWER_BASIC_AUTH
    return configured[0] if configured else f"demo:{secrets.token_urlsafe(12)}"


def token_line() -> str:
    """Mint the demo's ops-API token, save it in ``TOKEN_FILE``; the header line naming both."""
    from queues.exceptions import ConfigurationError
    from queues.http import auth

    try:
        token = auth.mint("demo", ["queues:view", "queues:enqueue", "queues:manage"])
    except ConfigurationError as exc:
        return f"ops API token: none ({exc})"
    TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
    TOKEN_FILE.write_text(token + "\n")
    TOKEN_FILE.chmod(0o600)
    return f"ops API token (1 h, also in {TOKEN_FILE.relative_to(ROOT)}): {token}"


@dataclass
class RateMeter:
    """Jobs finished per minute over the time the demo has watched (at most ``window_s``).

    ``queue_status`` divides a 5-minute total by 5 even ten seconds after the
    demo started; this meter divides what it saw finish by how long it watched,
    and leaves ``queues.ops.stats`` (the API's figure) alone.
    """

    window_s: float = RATE_WINDOW_S
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def observe(self, now: float, finished: int) -> float | None:
        """Record the running total ``finished`` at ``now`` (seconds); None until 1 s watched."""
        self.samples.append((now, finished))
        # Keep one sample at or before the window's start, so the rate spans all of it.
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.window_s:
            self.samples.popleft()
        since, base = self.samples[0]
        elapsed = now - since
        return None if elapsed < 1.0 else (finished - base) * 60.0 / elapsed


@dataclass(frozen=True)
class QueueRow:
    """One line of the live table."""

    name: str
    counts: dict[str, int]
    completed: int
    failed: int
    pools: tuple[int, ...]  # processes of each live worker serving the queue
    rate: float | None

    @property
    def unfinished(self) -> int:
        return self.counts["waiting"] + self.counts["active"] + self.counts["delayed"]


def workers_cell(pools: tuple[int, ...]) -> str:
    """``2w/3p``: live workers and the processes they run between them."""
    return f"{len(pools)}w/{sum(pools)}p"


def format_table(rows: list[QueueRow]) -> str:
    """The per-queue table, one header line and one line per queue."""
    lines = [f"{'queue':18} {'wait':>6} {'active':>6} {'delay':>6} {'done':>7} {'failed':>6} "
             f"{'workers':>8} {'jobs/min':>8}"]
    for row in rows:
        c = row.counts
        rate = "-" if row.rate is None else f"{row.rate:.1f}"
        lines.append(f"{row.name:18} {c['waiting']:>6} {c['active']:>6} {c['delayed']:>6} "
                     f"{row.completed:>7} {row.failed:>6} {workers_cell(row.pools):>8} "
                     f"{rate:>8}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Logins:
    """What stays on screen above the table: where to log in, and with what."""

    flower: str  # user:password
    token: str  # the ops-API token line
    admin: str = "admin / admin"

    def lines(self) -> list[str]:
        user, _, password = self.flower.partition(":")
        return [f"admin  http://127.0.0.1:3000/admin/  login {self.admin}  "
                "(dashboard: /admin/dashboard/)",
                f"flower http://127.0.0.1:5555/  login {user} / {password}",
                self.token, f"logs   {LOG_DIR.relative_to(ROOT)}/"]


def frame(clock: str, logins: Logins | None, rows: list[QueueRow]) -> str:
    """One redraw: the clock, the logins (None: already shown) and the table."""
    head = [clock, *(logins.lines() if logins else [])]
    return "\n".join([*head, format_table(rows)]) + "\n"


def live_pools(now_ms: int) -> dict[str, tuple[int, ...]]:
    """Pool size of each live worker per queue (live as ``queue_status`` counts workers)."""
    from queues.store.workers import live_since
    from workers.presence import list_workers

    since = live_since(now_ms)
    pools: dict[str, list[int]] = {name: [] for name in QUEUES}
    for worker in list_workers():
        if worker.last_activity.timestamp() * 1000 >= since:
            for name in set(worker.queue_names) & set(pools):
                pools[name].append(worker.concurrency)
    return {name: tuple(sizes) for name, sizes in pools.items()}


@dataclass
class Screen:
    """The live table's state: one rate meter per queue, started before the workload."""

    logins: Logins
    meters: dict[str, RateMeter] = field(default_factory=dict)

    def start(self) -> None:
        """Take each queue's finished total now, the baseline of its rate."""
        from queues.ops.manager import totals

        for name in QUEUES:
            tot = totals(name)
            self.meters[name] = RateMeter()
            self.meters[name].observe(time.monotonic(), tot["completed"] + tot["failed"])

    def rows(self) -> list[QueueRow]:
        from queues import store
        from queues.ops.manager import queue_status, totals

        pools = live_pools(store.now_ms())
        rows = []
        for name in QUEUES:
            counts, tot = queue_status(name).job_counts, totals(name)
            rate = self.meters[name].observe(time.monotonic(), tot["completed"] + tot["failed"])
            rows.append(QueueRow(name, counts, tot["completed"], tot["failed"], pools[name], rate))
        return rows


def watch(out: TextIO, screen: Screen, *, exit_when_done: bool,
          alive: Callable[[], list[str]]) -> int:
    """Redraw the table every second; return an exit code when told to stop."""
    tty = out.isatty()
    first = True
    while True:
        rows = screen.rows()
        if tty:
            out.write("\x1b[H\x1b[J")
        # A terminal is cleared each second, so the logins are redrawn; a log gets them once.
        out.write(frame(time.strftime("%H:%M:%S"), screen.logins if tty or first else None, rows))
        out.flush()
        first = False
        dead = alive()
        if dead:
            out.write(f"process(es) exited: {', '.join(dead)}; see {LOG_DIR}\n")
            return 1
        if exit_when_done and sum(row.unfinished for row in rows) == 0:
            out.write("sample workload done\n")
            return 0
        time.sleep(1)
