"""Writing terminal failures to SQL, exactly once each, through outages and poison rows.

``record_failure`` is connected to ``queues.signals.job_failed`` and runs in
the worker that saw the failure. It tells two kinds of database error apart:

- the database is unavailable (cannot connect, locked, gone away): the failure
  is appended to a Redis list and written by ``flush_pending`` (the worker
  bootstep calls it every few seconds, and every later failure tries it first);
- the database refused *this row* and always will (a JSON column that rejects
  the payload, a NUL byte in a PostgreSQL text column, a value too long): the
  failure goes to its queue's quarantine in Redis, with the error, and the
  failures behind it are written. ``jobqueue quarantine <queue>`` lists them and
  ``--retry`` tries them again; health and ``/metrics`` show how many there are.

A row's ``failure_key`` is unique, so a failure written twice is stored once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, DataError, IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from deadletter.conf import settings
from deadletter.fingerprint import fingerprint
from deadletter.models import DeadLetter
from queues import store
from queues.exceptions import BackendUnavailable
from queues.store import alerts

logger = logging.getLogger("deadletter")

# Sent when one job type fails more than FAILURE_ALERT_THRESHOLD times within
# FAILURE_ALERT_WINDOW (seed checkFailurePatterns). Arguments: queue,
# job_name, count, window_seconds, error_type.
failure_pattern_detected = Signal()

# Errors that say "this row can never be written", whatever the database's
# state: the database answered and refused the values (DataError,
# IntegrityError that is not a concurrent writer), or the record cannot even
# be turned into a row (ValueError, TypeError, KeyError). Every other
# DatabaseError means the database is unavailable: keep the item and retry.
UNWRITABLE = (DataError, IntegrityError, ValueError, TypeError, KeyError)
# Where a pending item that cannot be parsed is quarantined (it names no queue).
UNPARSED_QUEUE = "unparsed"


def record_failure(sender: Any = None, *, queue: str, job_id: str, record: dict[str, str],
                   **_: Any) -> None:
    """Store one terminal failure: a row, a quarantined entry, or kept in Redis while the
    database is unavailable."""
    item = {"queue": queue, "job_id": job_id, "record": record}
    try:
        flush_pending()
        store_item(item)
    except DatabaseError as exc:
        logger.warning("database unavailable, dead letter %s/%s kept in Redis: %s",
                       queue, job_id, exc)
        store.keep_pending_dead_letter(json.dumps(item))


def store_item(item: dict[str, Any]) -> DeadLetter | None:
    """Write one failure's row, or quarantine the failure when the database refuses the row.

    Raises:
        DatabaseError: the database is unavailable; nothing was written or quarantined.
    """
    try:
        return write(item)
    except UNWRITABLE as exc:
        quarantine(item, exc)
        return None


def quarantine(item: dict[str, Any], error: BaseException) -> None:
    """Move an unwritable failure aside, with its error, so the ones behind it go on."""
    queue, job_id = item.get("queue") or UNPARSED_QUEUE, item.get("job_id", "")
    entry = {**item, "error": f"{type(error).__name__}: {error}",
             "quarantined_at": store.now_ms()}
    held = store.quarantine_dead_letter(queue, json.dumps(entry))
    logger.error(
        "dead letter %s/%s can never be written to the database (%s: %s); moved to the "
        "queue's dead-letter quarantine (%d there, see `manage.py jobqueue quarantine %s`); "
        "the dead letters behind it are written", queue, job_id, type(error).__name__,
        error, held, queue)


def flush_pending(batch: int = 500) -> int:
    """Write failures kept in Redis during a database outage; returns how many were handled.

    An item the database refuses as a row is quarantined and the flush goes on;
    an unavailable database stops it, keeping that item and those behind it.

    Raises:
        DatabaseError: the database is unavailable.
    """
    if not store.pending_dead_letter_count():
        return 0
    handled = 0
    with store.pending_flush_lock() as held:
        if not held:  # another process is flushing
            return 0
        while items := store.pending_dead_letters(batch):
            done = 0
            try:
                for raw in items:
                    _store_pending(raw)
                    done += 1
            finally:
                # Exactly what was handled leaves the head; producers append at the tail.
                if done:
                    store.trim_pending_dead_letters(done)
                handled += done
    if handled:
        logger.info("wrote %d dead letters kept during a database outage", handled)
    return handled


def _store_pending(raw: str) -> None:
    try:
        item = json.loads(raw)
    except ValueError:
        item = None
    if isinstance(item, dict) and {"queue", "job_id", "record"} <= item.keys():
        store_item(item)
        return
    # Not an item this module wrote: keep its text for a human, under no queue.
    quarantine({"queue": UNPARSED_QUEUE, "job_id": "", "record": {}, "raw": raw},
               ValueError("not a pending dead-letter item"))


@dataclass(frozen=True)
class QuarantinedDeadLetter:
    """A terminal failure the database refused as a row, kept in Redis with the reason."""

    queue: str
    job_id: str
    job_name: str
    error: str
    quarantined_at: datetime
    record: dict[str, str]


def quarantined(queue: str, limit: int = 100) -> list[QuarantinedDeadLetter]:
    """The queue's quarantined failures, oldest first."""
    found = []
    for raw in store.quarantined_dead_letters(queue, limit):
        entry = json.loads(raw)
        record = entry.get("record") or {}
        found.append(QuarantinedDeadLetter(
            queue=queue, job_id=entry.get("job_id", ""), job_name=record.get("name", ""),
            error=entry.get("error", ""),
            quarantined_at=_ms_to_datetime(str(entry.get("quarantined_at", ""))),
            record=record))
    return found


def retry_quarantined(queue: str) -> tuple[int, int]:
    """Try the queue's quarantined failures again (say, after a schema fix).

    Returns (written, still quarantined). A written entry leaves the quarantine.

    Raises:
        DatabaseError: the database is unavailable.
    """
    written = 0
    entries = store.quarantined_dead_letters(queue, limit=None)
    for raw in entries:
        entry = json.loads(raw)
        try:
            write(entry)
        except UNWRITABLE:
            continue
        store.release_quarantined_dead_letter(queue, raw)
        written += 1
    return written, len(entries) - written


def _ms_to_datetime(raw: str | None) -> datetime:
    return datetime.fromtimestamp(int(raw) / 1000, tz=UTC) if raw else timezone.now()


def _text(value: str) -> str:
    # Error text comes from job code and may hold a NUL, which a PostgreSQL text
    # column refuses: keep it readable instead of losing the row.
    return value.replace("\x00", "\\x00")


def write(item: dict[str, Any]) -> DeadLetter:
    """Create the row for one failure (or return the one already written).

    Raises:
        UNWRITABLE: the database (or the record's own content) refuses this row.
        DatabaseError: the database is unavailable.
    """
    queue, job_id, rec = item["queue"], item["job_id"], item["record"]
    key = f"{queue}:{job_id}:{rec.get('finished_at', '')}"
    defaults = _fields(queue, job_id, rec)
    try:
        with transaction.atomic():
            row, created = DeadLetter.objects.get_or_create(failure_key=key, defaults=defaults)
    except IntegrityError:
        # A concurrent writer stored the same failure first, or the row itself is refused
        # (SQLite's JSON check on the payload): only the first has a row to return.
        first = DeadLetter.objects.filter(failure_key=key).first()
        if first is None:
            raise
        return first
    if created:
        _count_written(queue, row.job_name)
        check_failure_patterns(queue, row.job_name, row.error_type)
    return row


def _fields(queue: str, job_id: str, rec: dict[str, str]) -> dict[str, Any]:
    """A failure's row, linked to the dead letter whose requeue made this job (if one)."""
    previous = DeadLetter.objects.filter(queue=queue, requeued_as=job_id).first()
    error_type, error_message = _text(rec.get("error_type", "")), _text(rec.get("error", ""))
    group = fingerprint(error_type, error_message)
    return {
        "job_id": job_id, "queue": queue, "job_name": _text(rec.get("name", "")),
        "payload": json.loads(rec.get("data", "null")),
        "options": json.loads(rec.get("opts", "{}")),
        "error_type": error_type, "error_message": error_message,
        "fingerprint": group.key, "fingerprint_text": group.text,
        "traceback": _text(rec.get("traceback", "")), "attempts": int(rec.get("attempts_made", 0)),
        "reason": rec.get("failed_reason", DeadLetter.Reason.MAX_ATTEMPTS),
        "failed_at": _ms_to_datetime(rec.get("finished_at")),
        "trace_id": _text(rec.get("trace_id", "")), "previous": previous,
        "root_job_id": previous.root_job_id if previous else job_id,
        "requeue_generation": previous.requeue_generation + 1 if previous else 0,
    }


def _count_written(queue: str, job_name: str) -> None:
    # The row is stored: a Redis outage now costs one count, never the row.
    try:
        store.count_dead_letter(queue, job_name)
    except BackendUnavailable as exc:
        logger.warning("dead letter %s/%s written but not counted: %s", queue, job_name, exc)


def recent_failures(queue: str, job_name: str | None = None) -> int:
    """Failures of ``queue`` (optionally one job type) within the alert window."""
    since = timezone.now() - timedelta(seconds=settings.FAILURE_ALERT_WINDOW)
    rows = DeadLetter.objects.in_queue(queue).filter(failed_at__gte=since)
    return (rows.filter(job_name=job_name) if job_name else rows).count()


def check_failure_patterns(queue: str, job_name: str, error_type: str) -> bool:
    """Warn and signal when a job type fails more than the threshold within the window.

    At most one alert per job type and window (a Redis key with the window's TTL).
    """
    count = recent_failures(queue, job_name)
    if count <= settings.FAILURE_ALERT_THRESHOLD:
        return False
    window = settings.FAILURE_ALERT_WINDOW
    fresh = alerts.open_alert_window(queue, job_name, count, window_s=window)
    if fresh:
        logger.warning("High failure rate detected: queue=%s job_type=%s failures=%d in %ds "
                       "(last error %s)", queue, job_name, count, window, error_type)
        failure_pattern_detected.send(sender=DeadLetter, queue=queue, job_name=job_name,
                                      count=count, window_seconds=window, error_type=error_type)
    return bool(fresh)
