"""The queue and job verbs of ``manage.py jobqueue`` (see ``verb_command``).

``QUEUE_VERBS``: status, pause, resume, create, destroy, cancel, promote, priority, limits;
``SCHEDULE_VERBS``: recurring, enable-recurring, disable-recurring. Each handler calls one
service function of ``queues``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from queues import jobs
from queues.jobs import payload
from queues.management.verb_command import Subparsers, VerbGroup
from queues.ops import limits, manager, scheduling


def add_queue_verbs(verbs: Subparsers) -> None:
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
    promote = verbs.add_parser("promote", help="run a delayed job now")
    promote.add_argument("queue")
    promote.add_argument("job")
    priority = verbs.add_parser("priority",
                                help="give a waiting or delayed job a priority (0 runs first)")
    priority.add_argument("queue")
    priority.add_argument("job")
    priority.add_argument("priority", type=int, help="0-9")
    limits_verb = verbs.add_parser(
        "limits", help="show a queue's rate limit, concurrency and group limits, or set them")
    limits_verb.add_argument("queue")
    limits_verb.add_argument(
        "--set", dest="new_limits", metavar="JSON",
        help='replace them all, e.g. \'{"rate_limit": {"max": 10, "duration_ms": 1000}, '
             '"concurrency": 5, "group_concurrency": 2}\' ({} turns every limit off)')


def add_schedule_verbs(verbs: Subparsers) -> None:
    recurring = verbs.add_parser("recurring", help="list, add or cancel recurring jobs")
    recurring.add_argument("action", choices=["list", "add", "cancel"])
    recurring.add_argument("params", nargs="*", help="add: QUEUE NAME CRON [DATA-JSON]; cancel: ID")
    recurring.add_argument("--timezone", default="UTC")
    recurring.add_argument("--max-runs", type=int)
    for verb, help_text in (("enable-recurring", "let beat fire a recurring job again "
                                                 "(from its next tick; missed ticks are not run)"),
                            ("disable-recurring", "stop beat firing a recurring job")):
        verbs.add_parser(verb, help=help_text).add_argument("recurring_id", metavar="ID")


def json_argument(text: str, what: str) -> Any:
    """A JSON argument, parsed as strictly as the ops API parses bodies.

    Raises:
        CommandError: it is not strict JSON (duplicate keys, NaN, malformed).
    """
    try:
        return payload.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"{what} is not strict JSON: {exc}") from None


def do_status(cmd: BaseCommand, *, queue: str, **_: Any) -> None:
    status = manager.queue_status(queue)
    cmd.stdout.write(json.dumps(vars(status), indent=2))


def do_pause(cmd: BaseCommand, *, queue: str, actor: str, **_: Any) -> None:
    manager.pause_queue(queue, actor=actor)
    cmd.stdout.write(f"paused {queue}")


def do_resume(cmd: BaseCommand, *, queue: str, actor: str, **_: Any) -> None:
    released = manager.resume_queue(queue, actor=actor)
    cmd.stdout.write(f"resumed {queue}; released {released} parked jobs")


def do_create(cmd: BaseCommand, *, queue: str, config: str, actor: str, **_: Any) -> None:
    fields = json_argument(config, "--config")
    if not isinstance(fields, dict):
        raise CommandError("--config must be a JSON object of QueueType fields")
    manager.create_queue(queue, fields, actor=actor)
    cmd.stdout.write(f"created queue type {queue}")


def do_destroy(cmd: BaseCommand, *, queue: str, force: bool, actor: str, **_: Any) -> None:
    deleted = manager.destroy_queue(queue, force=force, actor=actor)
    cmd.stdout.write(f"destroyed {queue} ({deleted} Redis keys removed)")


def do_cancel(cmd: BaseCommand, *, queue: str, job: str, actor: str, **_: Any) -> None:
    outcome = jobs.cancel_job(queue, job, actor=actor)
    cmd.stdout.write(f"{queue}/{job}: cancelled" if outcome == "cancelled" else
                     f"{queue}/{job}: running; cancellation requested (its code must stop)")


def do_promote(cmd: BaseCommand, *, queue: str, job: str, actor: str, **_: Any) -> None:
    jobs.promote_job(queue, job, actor=actor)
    cmd.stdout.write(f"{queue}/{job}: waiting (promoted)")


def do_priority(cmd: BaseCommand, *, queue: str, job: str, priority: int, actor: str,
                **_: Any) -> None:
    jobs.change_priority(queue, job, priority, actor=actor)
    cmd.stdout.write(f"{queue}/{job}: priority {priority}")


def do_limits(cmd: BaseCommand, *, queue: str, new_limits: str | None, actor: str,
              **_: Any) -> None:
    if new_limits is None:
        current = limits.limits_of(queue)
    else:
        current = limits.set_limits(queue, json_argument(new_limits, "--set"), actor=actor)
    cmd.stdout.write(json.dumps(current.model_dump(), indent=2))


def do_recurring(cmd: BaseCommand, *, action: str, params: list[str], timezone: str,
                 max_runs: int | None, actor: str, **_: Any) -> None:
    if action == "list":
        for job in scheduling.list_recurring():
            cmd.stdout.write(f"{job.id:>5} {job.queue}:{job.name} '{job.cron_expression}' "
                             f"{job.timezone} next={job.next_run} runs={job.runs}")
    elif action == "add" and len(params) in (3, 4):
        data = json_argument(params[3], "DATA-JSON") if len(params) == 4 else {}
        queue, name, cron = params[:3]
        job = scheduling.schedule_recurring(queue, name, data, cron, timezone=timezone,
                                            max_runs=max_runs, actor=actor)
        cmd.stdout.write(f"recurring {job.id}: next run {job.next_run}")
    elif action == "cancel" and len(params) == 1:
        scheduling.cancel_recurring(params[0], actor=actor)
        cmd.stdout.write(f"cancelled recurring {params[0]}")
    else:
        raise CommandError("recurring add QUEUE NAME CRON [DATA-JSON] | recurring cancel ID")


def do_enable_recurring(cmd: BaseCommand, *, recurring_id: str, actor: str, **_: Any) -> None:
    job = scheduling.set_recurring_enabled(recurring_id, True, actor=actor)
    cmd.stdout.write(f"recurring {job.id} ({job.queue}:{job.name}) enabled; "
                     f"next run {job.next_run}")


def do_disable_recurring(cmd: BaseCommand, *, recurring_id: str, actor: str, **_: Any) -> None:
    job = scheduling.set_recurring_enabled(recurring_id, False, actor=actor)
    cmd.stdout.write(f"recurring {job.id} ({job.queue}:{job.name}) disabled")


QUEUE_VERBS = VerbGroup(add_queue_verbs, {
    "status": do_status, "pause": do_pause, "resume": do_resume, "create": do_create,
    "destroy": do_destroy, "cancel": do_cancel, "promote": do_promote,
    "priority": do_priority, "limits": do_limits,
})
SCHEDULE_VERBS = VerbGroup(add_schedule_verbs, {
    "recurring": do_recurring, "enable-recurring": do_enable_recurring,
    "disable-recurring": do_disable_recurring,
})
