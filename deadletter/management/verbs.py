"""The dead-letter verbs of ``manage.py jobqueue`` and ``manage.py deadletter``.

failed, requeue, purge, stats, quarantine and schedule-maintenance: a ``VerbGroup``
(``queues.management.verb_command``); each handler calls one service function of
``deadletter`` (the admin and the HTTP API call the same ones).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from deadletter import recording, retention, services
from deadletter.models import DeadLetter
from queues import registry, store
from queues.exceptions import CoordinatorError
from queues.management.verb_command import Subparsers, VerbGroup

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``45s``, ``2w``.

    Raises:
        CommandError: anything else.
    """
    match = _DURATION.match(text.strip())
    if not match:
        raise CommandError(f"{text!r} is not a duration; use a number and s, m, h, d or w "
                           "(for example 7d)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def add_dead_letter_verbs(verbs: Subparsers) -> None:
    failed = verbs.add_parser("failed", help="list a queue's dead letters")
    failed.add_argument("queue")
    failed.add_argument("--limit", type=int, default=50)
    failed.add_argument("--status", choices=["open", "requeued", "archived", "all"],
                        default="open")
    requeue = verbs.add_parser("requeue", help="requeue dead letters as new jobs")
    requeue.add_argument("queue")
    requeue.add_argument("id", nargs="?", help="dead-letter id or job id")
    requeue.add_argument("--all", action="store_true", help="every open dead letter")
    requeue.add_argument("--reason", default="", help="kept in the audit log")
    purge = verbs.add_parser("purge", help="delete dead letters")
    purge.add_argument("queue")
    purge.add_argument("--older-than", type=parse_duration, help="e.g. 7d, 12h")
    purge.add_argument("--all", action="store_true", help="every dead letter of the queue")
    stats = verbs.add_parser("stats", help="dead-letter statistics of a queue")
    stats.add_argument("queue")
    quarantine = verbs.add_parser(
        "quarantine", help="dead letters the database refused, and broker items that were "
                      "not messages (both held in Redis)")
    quarantine.add_argument("queue")
    quarantine.add_argument("--limit", type=int, default=50)
    quarantine.add_argument("--retry", action="store_true",
                            help="write them again (after fixing the cause)")
    verbs.add_parser("schedule-maintenance", help="create/update the retention beat entries")


def do_failed(cmd: BaseCommand, *, queue: str, limit: int, status: str, **_: Any) -> None:
    rows = services.failed_jobs(queue, limit, status=None if status == "all" else status)
    if not rows:
        which = "" if status == "all" else f"{status} "
        cmd.stdout.write(f"No {which}dead letters in {queue}.")
        return
    cmd.stdout.write(f"{'id':>6}  {'job id':34} {'job':22} {'error':20} {'reason':22} "
                     f"{'tries':>5}  failed at")
    for row in rows:
        cmd.stdout.write(f"{row.pk:>6}  {row.job_id[:34]:34} {row.job_name[:22]:22} "
                         f"{row.error_type[:20]:20} {row.reason:22} {row.attempts:>5}  "
                         f"{row.failed_at:%Y-%m-%d %H:%M:%S}")


def do_requeue(cmd: BaseCommand, *, queue: str, id: str | None, all: bool, reason: str,
               actor: str, **_: Any) -> None:
    if bool(id) == all:
        raise CommandError("give a dead-letter id or job id, or --all (not both)")
    if id:
        row = (services.get_dead_letter(int(id)) if id.isdigit()
               else services.latest_for_job(queue, id))
        if row.queue != queue:
            raise CommandError(f"dead letter {row.pk} belongs to queue {row.queue!r}")
        result = services.requeue_dead_letter(row.pk, actor=actor, reason=reason)
        cmd.stdout.write(f"requeued dead letter {row.pk} as job {result.job_id}")
        return
    _requeue_all(cmd, queue, actor=actor, reason=reason)


def _requeue_all(cmd: BaseCommand, queue: str, *, actor: str, reason: str) -> None:
    ids = list(DeadLetter.objects.in_queue(queue).requeueable().values_list("pk", flat=True))
    services.failed_jobs(queue, 1)  # refuses an unknown queue before anything is done
    errors = []
    for pk in tqdm(ids, desc=f"requeue {queue}", unit="job", file=cmd.stderr._out):
        try:
            services.requeue_dead_letter(pk, actor=actor, reason=reason)
        except CoordinatorError as exc:
            errors.append(f"{pk}: {exc}")
    cmd.stdout.write(f"requeued {len(ids) - len(errors)} of {len(ids)} dead letters")
    if errors:
        raise CommandError("not requeued: " + "; ".join(errors[:10]))


def do_purge(cmd: BaseCommand, *, queue: str, older_than: timedelta | None, all: bool,
             actor: str, **_: Any) -> None:
    if older_than is None and not all:
        raise CommandError("give --older-than (e.g. 7d) or --all")
    deleted = services.purge_dead_letters(queue, older_than=older_than, actor=actor)
    cmd.stdout.write(f"purged {deleted} dead letters from {queue}")


def do_stats(cmd: BaseCommand, *, queue: str, **_: Any) -> None:
    stats = services.dead_letter_statistics(queue)
    for field, value in vars(stats).items():
        cmd.stdout.write(f"{field:28} {value}")


def do_quarantine(cmd: BaseCommand, *, queue: str, limit: int, retry: bool, **_: Any) -> None:
    if queue != recording.UNPARSED_QUEUE:
        registry.get(queue)  # refuses an unknown queue
    if retry:
        written, left = recording.retry_quarantined(queue)
        cmd.stdout.write(f"wrote {written} quarantined dead letters of {queue}; "
                         f"{left} still quarantined")
        return
    entries = recording.quarantined(queue, limit)
    cmd.stdout.write(f"Dead letters the database refused ({len(entries)} shown):")
    for entry in entries:
        cmd.stdout.write(f"  {entry.quarantined_at:%Y-%m-%d %H:%M:%S}  {entry.job_id}  "
                         f"{entry.job_name}  {entry.error}")
    messages = [json.loads(raw) for raw in store.quarantined_messages(queue, limit)]
    cmd.stdout.write(f"Broker items that were not messages ({len(messages)} shown):")
    for item in messages:
        when = datetime.fromtimestamp(item["received_at"] / 1000, tz=UTC)
        cmd.stdout.write(f"  {when:%Y-%m-%d %H:%M:%S}  {item['size']} bytes  "
                         f"{item['reason']}  {item['raw'][:60]!r}")


def do_schedule_maintenance(cmd: BaseCommand, **_: Any) -> None:
    created = retention.ensure_schedules()
    cmd.stdout.write(f"retention schedules in place ({created} new)")


DEAD_LETTER_VERBS = VerbGroup(add_dead_letter_verbs, {
    "failed": do_failed, "requeue": do_requeue, "purge": do_purge, "stats": do_stats,
    "quarantine": do_quarantine, "schedule-maintenance": do_schedule_maintenance,
})
