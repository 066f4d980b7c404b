"""Dead-letter services against real SQL and Redis: recording, requeue, archive, purge, stats."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
from django.test import override_settings
from django.utils import timezone

from deadletter import recording, services
from deadletter.models import AuditEvent, DeadLetter
from queues import store
from queues.exceptions import DeadLetterNotFound, NotRequeueable, QueueTypeNotFound
from queues.jobs import get_job

pytestmark = [pytest.mark.db_vendors]
Q = "photo-processing"


def failure(job_id: str, *, name: str = "t-always-fails", error: str = "LookupError",
            finished_at: int | None = None, payload: str = '{"item": "x"}') -> dict[str, str]:
    """A final job record as the worker's finish script returns it."""
    return {
        "id": job_id, "name": name, "queue": Q, "task": f"{Q}:{name}", "data": payload,
        "opts": '{"priority": 2, "attempts": 3, "backoff": {"type": "fixed", "delay": 10, '
                '"max_delay": 300000}, "remove_on_complete": 100, "remove_on_fail": 50}',
        "error_type": error, "error": f"{error}: boom", "traceback": "Traceback ...",
        "attempts_made": "3", "failed_reason": "max_attempts_exceeded",
        "finished_at": str(finished_at or store.now_ms()), "trace_id": "tr-1",
    }


def record(job_id: str, **kw: Any) -> DeadLetter:
    recording.record_failure(queue=Q, job_id=job_id, record=failure(job_id, **kw))
    return DeadLetter.objects.get(job_id=job_id)


@pytest.mark.django_db
def test_a_failure_is_recorded_once_with_its_details() -> None:
    rec = failure("j1")
    recording.record_failure(queue=Q, job_id="j1", record=rec)
    recording.record_failure(queue=Q, job_id="j1", record=rec)  # delivered twice
    [row] = DeadLetter.objects.all()
    assert (row.queue, row.job_name, row.error_type, row.reason, row.attempts) == (
        Q, "t-always-fails", "LookupError", "max_attempts_exceeded", 3)
    assert row.payload == {"item": "x"} and row.options["priority"] == 2
    assert row.status == "open" and row.root_job_id == "j1"


@pytest.mark.django_db
def test_requeue_makes_a_new_job_and_a_second_failure_links_to_the_first(
        r: redis.Redis) -> None:
    first = record("j2")
    result = services.requeue_dead_letter(first.pk, actor="alice", reason="fixed the bucket")
    assert result.job_id == "j2:r1"
    job = get_job(Q, "j2:r1")
    assert (job.state, job.data, job.priority, job.max_attempts) == ("waiting", {"item": "x"}, 2, 3)
    first.refresh_from_db()
    assert (first.status, first.requeued_as, first.acted_by) == ("requeued", "j2:r1", "alice")
    second = record("j2:r1")
    assert second.previous == first and second.root_job_id == "j2"
    assert services.requeue_dead_letter(second.pk, actor="alice").job_id == "j2:r2"
    [event, _] = AuditEvent.objects.filter(action="requeue").order_by("created_at")
    assert (event.actor, event.target_id, event.job_id, event.details["reason"]) == (
        "alice", str(first.pk), "j2", "fixed the bucket")
    assert event.details["new_job_id"] == "j2:r1"
    with pytest.raises(NotRequeueable, match="requeued"):
        services.requeue_dead_letter(first.pk, actor="bob")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requeues_create_one_job(r: redis.Redis,
                                                builtin_queue_types: None) -> None:
    row = record("j3")
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def requeue() -> None:
        barrier.wait()
        try:
            outcomes.append(services.requeue_dead_letter(row.pk, actor="t").job_id)
        except NotRequeueable:
            outcomes.append("refused")
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=requeue) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["j3:r1", "refused"]
    assert r.llen(f"{Q}\x06\x162") == 1, "exactly one message was published"
    assert AuditEvent.objects.filter(action="requeue").count() == 1


@pytest.mark.django_db
def test_archive_and_purge(r: redis.Redis) -> None:
    old = record("old", finished_at=store.now_ms() - 10 * 86400 * 1000)
    new = record("new")
    archived = services.archive_dead_letter(new.pk, actor="carol")
    assert archived.status == "archived"
    with pytest.raises(NotRequeueable):
        services.requeue_dead_letter(new.pk, actor="carol")
    assert services.purge_dead_letters(Q, older_than=timedelta(days=7), actor="carol") == 1
    assert not DeadLetter.objects.filter(pk=old.pk).exists()
    assert services.purge_dead_letters(Q, actor="carol") == 1
    assert list(AuditEvent.objects.values_list("action", "job_id").order_by("pk")) == [
        ("archive", "new"), ("purge", ""), ("purge", "")]
    purges = AuditEvent.objects.filter(action="purge").order_by("pk")
    assert [e.details["job_ids"] for e in purges] == [["old"], ["new"]]
    assert not any(e.details["job_ids_truncated"] for e in purges)
    with pytest.raises(DeadLetterNotFound):
        services.archive_dead_letter(old.pk, actor="carol")
    with pytest.raises(QueueTypeNotFound):
        services.purge_dead_letters("nope", actor="carol")


@pytest.mark.django_db
def test_statistics_from_the_rows(r: redis.Redis) -> None:
    long_ago = store.now_ms() - 3 * 86400 * 1000
    record("a", finished_at=long_ago)
    record("b", error="TimeoutError")
    record("c", name="t-boom")
    stats = services.dead_letter_statistics(Q)
    assert stats.total_failed_jobs == stats.open_failed_jobs == 3
    assert stats.failures_by_job_type == {"t-always-fails": 2, "t-boom": 1}
    assert stats.failures_by_error_type == {"LookupError": 2, "TimeoutError": 1}
    assert stats.oldest_failure == datetime.fromtimestamp(
        long_ago / 1000, tz=timezone.get_current_timezone())
    assert stats.recent_failure_rate == pytest.approx(2 / 5)  # 2 within 5 minutes
    assert stats.recent_failures_by_job_type == {"t-always-fails": 1, "t-boom": 1}


@pytest.mark.django_db
def test_failure_pattern_alerts_once_per_window(r: redis.Redis,
                                                caplog: pytest.LogCaptureFixture) -> None:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    recording.failure_pattern_detected.connect(receiver, dispatch_uid="test-pattern")
    try:
        with override_settings(DEADLETTER_FAILURE_ALERT_THRESHOLD=3), \
                caplog.at_level(logging.WARNING, logger="deadletter"):
            for n in range(6):
                record(f"p{n}")
    finally:
        recording.failure_pattern_detected.disconnect(dispatch_uid="test-pattern")
    assert len(seen) == 1 and seen[0]["count"] == 4 and seen[0]["job_name"] == "t-always-fails"
    assert "High failure rate detected" in caplog.text and "failures=4" in caplog.text


@pytest.mark.django_db
def test_unknown_ids_and_queues_are_refused() -> None:
    with pytest.raises(DeadLetterNotFound):
        services.requeue_dead_letter(999999, actor="x")
    with pytest.raises(DeadLetterNotFound):
        services.latest_for_job(Q, "never-failed")
    with pytest.raises(QueueTypeNotFound):
        services.failed_jobs("nope")


def test_requeue_ids_stay_within_the_job_id_limit() -> None:
    assert services.requeue_job_id("j2", 1) == "j2:r1"
    root = "x" * 200
    first, again = services.requeue_job_id(root, 3), services.requeue_job_id(root, 3)
    assert first == again and len(first) == 200 and first.endswith(":r3")
    assert services.requeue_job_id("y" * 200, 3) != first
