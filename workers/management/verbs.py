"""The worker verbs of ``manage.py jobqueue``: workers, pause-worker, resume-worker, scale.

A ``VerbGroup`` (``queues.management.verb_command``); each handler calls one service
function of ``workers``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from queues.management.verb_command import Subparsers, VerbGroup
from workers import presence, scaling


def add_worker_verbs(verbs: Subparsers) -> None:
    verbs.add_parser("workers", help="list workers").add_argument("queue", nargs="?")
    for name in ("pause-worker", "resume-worker"):
        verbs.add_parser(name, help=f"{name.split('-')[0]} one worker").add_argument("worker")
    scale = verbs.add_parser("scale", help="set the processes serving a queue")
    scale.add_argument("queue")
    scale.add_argument("target", type=int)


def do_workers(cmd: BaseCommand, *, queue: str | None, **_: Any) -> None:
    rows = presence.list_workers(queue)
    if not rows:
        cmd.stdout.write("No workers.")
    for w in rows:
        cmd.stdout.write(f"{w.id:32} {w.status:7} {','.join(w.queue_names):30} "
                         f"procs={w.concurrency} done={w.processed_jobs} failed={w.failed_jobs} "
                         f"rss={w.rss_bytes // 2**20}MB cpu={w.cpu_percent}%")


def do_pause_worker(cmd: BaseCommand, *, worker: str, actor: str, **_: Any) -> None:
    cmd.stdout.write(f"{worker}: {presence.pause_worker(worker, actor=actor).status}")


def do_resume_worker(cmd: BaseCommand, *, worker: str, actor: str, **_: Any) -> None:
    cmd.stdout.write(f"{worker}: {presence.resume_worker(worker, actor=actor).status}")


def do_scale(cmd: BaseCommand, *, queue: str, target: int, actor: str, **_: Any) -> None:
    result = scaling.scale_workers(queue, target, actor=actor)
    cmd.stdout.write(f"{queue}: {result.previous_count} -> {result.actual_count} processes "
                     f"(target {result.target_count}, {result.action})")


WORKER_VERBS = VerbGroup(add_worker_verbs, {
    "workers": do_workers, "pause-worker": do_pause_worker,
    "resume-worker": do_resume_worker, "scale": do_scale,
})
