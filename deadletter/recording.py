"""Writing terminal failures to SQL, exactly once each, even through a database outage.

``record_failure`` is connected to ``queues.signals.job_failed`` and runs in
the worker that saw the failure. If the database cannot be reached the
failure is appended to a Redis list and written by ``flush_pending`` (the
worker bootstep calls it every few seconds, and every later failure tries it
first). A row's ``failure_key`` is unique, so a failure written twice is
stored once.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from deadletter.conf import settings
from deadletter.models import DeadLetter
from queues import keys, store

logger = logging.getLogger("deadletter")

# Sent when one job type fails more than FAILURE_ALERT_THRESHOLD times within
# FAILURE_ALERT_WINDOW (seed checkFailurePatterns). Arguments: queue,
# job_name, count, window_seconds, error_type.
failure_pattern_detected = Signal()


def record_failure(sender: Any = None, *, queue: str, job_id: str, record: dict[str, str],
                   **_: Any) -> None:
    """Store one terminal failure, or keep it in Redis while the database is down."""
    item = {"queue": queue, "job_id": job_id, "record": record}
    try:
        flush_pending()
        write(item)
    except DatabaseError as exc:
        logger.warning("database unavailable, dead letter %s/%s kept in Redis: %s",
                       queue, job_id, exc)
        with store.backend():
            store.client().rpush(keys.pending_dead_letters(), json.dumps(item))


def flush_pending(batch: int = 500) -> int:
    """Write failures kept in Redis during a database outage; returns how many."""
    cli = store.client()
    with store.backend():
        if not cli.llen(keys.pending_dead_letters()):
            return 0
        # One flusher at a time: it trims exactly what it wrote from the head,
        # while producers append at the tail.
        if not cli.set(keys.pending_flush_lock(), "1", nx=True, ex=60):
            return 0
    written = 0
    try:
        while items := cli.lrange(keys.pending_dead_letters(), 0, batch - 1):
            for raw in items:
                write(json.loads(raw))
            cli.ltrim(keys.pending_dead_letters(), len(items), -1)
            written += len(items)
    finally:
        cli.delete(keys.pending_flush_lock())
    if written:
        logger.info("wrote %d dead letters kept during a database outage", written)
    return written


def _ms_to_datetime(raw: str | None) -> datetime:
    return datetime.fromtimestamp(int(raw) / 1000, tz=UTC) if raw else timezone.now()


def write(item: dict[str, Any]) -> DeadLetter:
    """Create the row for one failure (or return the one already written)."""
    queue, job_id, rec = item["queue"], item["job_id"], item["record"]
    key = f"{queue}:{job_id}:{rec.get('finished_at', '')}"
    previous = DeadLetter.objects.filter(queue=queue, requeued_as=job_id).first()
    defaults = {
        "job_id": job_id, "queue": queue, "job_name": rec.get("name", ""),
        "payload": json.loads(rec.get("data", "null")),
        "options": json.loads(rec.get("opts", "{}")),
        "error_type": rec.get("error_type", ""), "error_message": rec.get("error", ""),
        "traceback": rec.get("traceback", ""), "attempts": int(rec.get("attempts_made", 0)),
        "reason": rec.get("failed_reason", DeadLetter.Reason.MAX_ATTEMPTS),
        "failed_at": _ms_to_datetime(rec.get("finished_at")), "trace_id": rec.get("trace_id", ""),
        "previous": previous,
        "root_job_id": previous.root_job_id if previous else job_id,
        "requeue_generation": previous.requeue_generation + 1 if previous else 0,
    }
    try:
        with transaction.atomic():
            row, created = DeadLetter.objects.get_or_create(failure_key=key, defaults=defaults)
    except IntegrityError:  # a concurrent writer stored the same failure first
        return DeadLetter.objects.get(failure_key=key)
    if created:
        check_failure_patterns(queue, row.job_name, row.error_type)
    return row


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
    with store.backend():
        fresh = store.client().set(keys.failure_alert(queue, job_name), count, nx=True, ex=window)
    if fresh:
        logger.warning("High failure rate detected: queue=%s job_type=%s failures=%d in %ds "
                       "(last error %s)", queue, job_name, count, window, error_type)
        failure_pattern_detected.send(sender=DeadLetter, queue=queue, job_name=job_name,
                                      count=count, window_seconds=window, error_type=error_type)
    return bool(fresh)
