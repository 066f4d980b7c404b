"""The queue and worker verbs of ``manage.py jobqueue`` (methods of its Command)."""

from __future__ import annotations

import json
from argparse import _SubParsersAction
from typing import Any

from django.core.management.base import CommandParser

from queues import jobs, manager, payload, scheduling
from workers import presence, scaling


def add_management_verbs(verbs: _SubParsersAction[CommandParser]) -> None:
    for name, help_text in (("status", "counts, paused flag, workers and rates of a queue"),
                            ("pause", "pause a queue on every worker"),
                            ("resume", "resume a queue and release its parked jobs")):
        verbs.add_parser(name, help=help_text).add_argument("queue")
    create = verbs.add_parser("create", help="register a queue type")
    create.add_argument("queue")
    create.add_argument("--config", default="{}", help="JSON of QueueType fields")
    destroy = verbs.add_parser("destroy", help="remove a queue type and its Redis keys")
    destroy.add_argument("queue")
    destroy.add_argument("--force", action="store_true", help="even with jobs left")
    cancel = verbs.add_parser("cancel", help="cancel a job (a running one is only flagged)")
    cancel.add_argument("queue")
    cancel.add_argument("job")
    priority = verbs.add_parser("priority",
                                help="give a waiting or delayed job a priority (0 runs first)")
    priority.add_argument("queue")
    priority.add_argument("job")
    priority.add_argument("priority", type=int, help="0-9")
    verbs.add_parser("workers", help="list workers").add_argument("queue", nargs="?")
    for name in ("pause-worker", "resume-worker"):
        verbs.add_parser(name, help=f"{name.split('-')[0]} one worker").add_argument("worker")
    scale = verbs.add_parser("scale", help="set the processes serving a queue")
    scale.add_argument("queue")
    scale.add_argument("target", type=int)
    recurring = verbs.add_parser("recurring", help="list, add or cancel recurring jobs")
    recurring.add_argument("action", choices=["list", "add", "cancel"])
    recurring.add_argument("params", nargs="*", help="add: QUEUE NAME CRON [DATA-JSON]; cancel: ID")
    recurring.add_argument("--timezone", default="UTC")
    recurring.add_argument("--max-runs", type=int)


def json_argument(text: str, what: str) -> Any:
    """A JSON argument, parsed as strictly as the ops API parses bodies.

    Raises:
        CommandError: it is not strict JSON (duplicate keys, NaN, malformed).
    """
    from django.core.management.base import CommandError

    try:
        return payload.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"{what} is not strict JSON: {exc}") from None


def do_status(self: Any, *, queue: str, **_: Any) -> None:
    status = manager.queue_status(queue)
    self.stdout.write(json.dumps(vars(status), indent=2))


def do_pause(self: Any, *, queue: str, actor: str, **_: Any) -> None:
    manager.pause_queue(queue, actor=actor)
    self.stdout.write(f"paused {queue}")


def do_resume(self: Any, *, queue: str, actor: str, **_: Any) -> None:
    released = manager.resume_queue(queue, actor=actor)
    self.stdout.write(f"resumed {queue}; released {released} parked jobs")


def do_create(self: Any, *, queue: str, config: str, actor: str, **_: Any) -> None:
    from django.core.management.base import CommandError

    fields = json_argument(config, "--config")
    if not isinstance(fields, dict):
        raise CommandError("--config must be a JSON object of QueueType fields")
    manager.create_queue(queue, fields, actor=actor)
    self.stdout.write(f"created queue type {queue}")


def do_destroy(self: Any, *, queue: str, force: bool, actor: str, **_: Any) -> None:
    deleted = manager.destroy_queue(queue, force=force, actor=actor)
    self.stdout.write(f"destroyed {queue} ({deleted} Redis keys removed)")


def do_cancel(self: Any, *, queue: str, job: str, actor: str, **_: Any) -> None:
    outcome = jobs.cancel_job(queue, job, actor=actor)
    self.stdout.write(f"{queue}/{job}: cancelled" if outcome == "cancelled" else
                      f"{queue}/{job}: running; cancellation requested (its code must stop)")


def do_priority(self: Any, *, queue: str, job: str, priority: int, actor: str,
                **_: Any) -> None:
    jobs.change_priority(queue, job, priority, actor=actor)
    self.stdout.write(f"{queue}/{job}: priority {priority}")


def do_workers(self: Any, *, queue: str | None, **_: Any) -> None:
    rows = presence.list_workers(queue)
    if not rows:
        self.stdout.write("No workers.")
    for w in rows:
        self.stdout.write(f"{w.id:32} {w.status:7} {','.join(w.queue_names):30} "
                          f"procs={w.concurrency} done={w.processed_jobs} failed={w.failed_jobs} "
                          f"rss={w.rss_bytes // 2**20}MB cpu={w.cpu_percent}%")


def do_pause_worker(self: Any, *, worker: str, actor: str, **_: Any) -> None:
    self.stdout.write(f"{worker}: {presence.pause_worker(worker, actor=actor).status}")


def do_resume_worker(self: Any, *, worker: str, actor: str, **_: Any) -> None:
    self.stdout.write(f"{worker}: {presence.resume_worker(worker, actor=actor).status}")


def do_scale(self: Any, *, queue: str, target: int, actor: str, **_: Any) -> None:
    result = scaling.scale_workers(queue, target, actor=actor)
    self.stdout.write(f"{queue}: {result.previous_count} -> {result.actual_count} processes "
                      f"(target {result.target_count}, {result.action})")


def do_recurring(self: Any, *, action: str, params: list[str], timezone: str,
                 max_runs: int | None, actor: str, **_: Any) -> None:
    from django.core.management.base import CommandError

    if action == "list":
        for job in scheduling.list_recurring():
            self.stdout.write(f"{job.id:>5} {job.queue}:{job.name} '{job.cron_expression}' "
                              f"{job.timezone} next={job.next_run} runs={job.runs}")
    elif action == "add" and len(params) in (3, 4):
        data = json_argument(params[3], "DATA-JSON") if len(params) == 4 else {}
        queue, name, cron = params[:3]
        job = scheduling.schedule_recurring(queue, name, data, cron, timezone=timezone,
                                            max_runs=max_runs, actor=actor)
        self.stdout.write(f"recurring {job.id}: next run {job.next_run}")
    elif action == "cancel" and len(params) == 1:
        scheduling.cancel_recurring(params[0], actor=actor)
        self.stdout.write(f"cancelled recurring {params[0]}")
    else:
        raise CommandError("recurring add QUEUE NAME CRON [DATA-JSON] | recurring cancel ID")
