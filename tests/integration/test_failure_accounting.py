"""Every terminal failure counts where rates are read; dead letters count rows written.

Expired (at claim), stalled (at recovery) and timed-out (hard limit) jobs land
in the per-minute buckets behind processing rate, error rate, health and the
optimizer; the rolling window divides by the time it covers; and
``jobs_dead_letter_total`` counts rows the dead-letter writer created.
"""

from __future__ import annotations

import json

import pytest
import redis
from billiard.exceptions import TimeLimitExceeded
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from deadletter import recording
from deadletter.models import DeadLetter
from queues import store
from queues.jobs import enqueue, get_job, recovery
from queues.jobs.task import fail_attempt
from queues.ops import metrics, stats
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import resilience_queue_type

pytestmark = pytest.mark.django_db
Q, R = "photo-processing", t.RESILIENCE


def claim(queue: str, job_id: str, token: str = "tok") -> store.Claim:
    return store.claim(queue, job_id, gen=1, token=token, worker="w@test")


def test_an_expired_job_counts_as_a_failure_in_the_window(r: redis.Redis,
                                                          builtin_queue_types: None) -> None:
    handle = enqueue(Q, "t-echo", {"value": 1})
    with override_settings(COORDINATOR_MAX_JOB_AGE=1):
        r.hset(keys.job(Q, handle.id), "runnable_at", store.now_ms() - 1000)
        outcome = claim(Q, handle.id)
    assert outcome.reason == "expired"
    recent = stats.window(Q)
    assert (recent.failed, recent.untimed, recent.error_rate) == (1, 1, 1.0)
    assert recent.processing_rate > 0
    assert recent.average_processing_time == 0.0, "no attempt ran: no time to average"


def test_a_job_stalled_too_often_counts_as_a_failure_in_the_window(r: redis.Redis) -> None:
    resilience_queue_type(stalled_interval_ms=1000, max_stalled_count=0)
    handle = enqueue(R, "t-work", {})
    assert claim(R, handle.id).claimed
    assert recovery.recover_lost(R, handle.id, "tok") == 2
    assert get_job(R, handle.id).failed_reason == "stalled"
    recent = stats.window(R)
    assert (recent.failed, recent.untimed, recent.error_rate) == (1, 1, 1.0)


def test_a_handed_back_job_is_not_counted_as_failed(r: redis.Redis) -> None:
    resilience_queue_type(stalled_interval_ms=1000, max_stalled_count=2)
    handle = enqueue(R, "t-work", {})
    assert claim(R, handle.id).claimed
    assert recovery.recover_lost(R, handle.id, "tok") == 1, "back to waiting"
    assert stats.window(R).finished == 0


def test_a_timed_out_last_attempt_counts_with_its_time(r: redis.Redis) -> None:
    resilience_queue_type(stalled_interval_ms=30000, max_stalled_count=1)
    handle = enqueue(R, "t-work", {}, attempts=1)
    assert claim(R, handle.id).claimed
    assert fail_attempt(t.work, handle.id, token="tok", worker="w@test",
                        exc=TimeLimitExceeded(1.5), tb="killed") is None
    info = get_job(R, handle.id)
    assert (info.failed_reason, info.error_type) == ("timeout", "TimeLimitExceeded")
    recent = stats.window(R)
    assert (recent.failed, recent.untimed, recent.timed) == (1, 0, 1)
    assert DeadLetter.objects.get(job_id=handle.id).reason == "timeout"


def _bucket(queue: str, minutes_ago: int) -> str:
    return f"{keys.stats_bucket_prefix(queue)}{store.now_ms() // 60000 - minutes_ago}"


def test_the_window_divides_by_the_time_since_the_queue_started(r: redis.Redis) -> None:
    r.hset(keys.stats("young"), "first_activity_ms", store.now_ms() - 120_000)
    r.hset(_bucket("young", 0), "completed", 6)
    recent = stats.window("young", 5)
    assert 1.99 < recent.covered_minutes < 2.01
    assert 2.9 < recent.processing_rate < 3.1, "6 jobs in 2 minutes, not in 5"


def test_the_window_is_capped_at_its_length(r: redis.Redis) -> None:
    r.hset(keys.stats("old"), "first_activity_ms", store.now_ms() - 3_600_000)
    r.hset(_bucket("old", 0), "completed", 10)
    recent = stats.window("old", 5)
    assert 4 <= recent.covered_minutes <= 5
    assert 2 <= recent.processing_rate <= 2.5


def test_without_a_first_activity_the_oldest_bucket_present_starts_the_window(
        r: redis.Redis) -> None:
    r.hset(_bucket("legacy", 1), "completed", 4)
    recent = stats.window("legacy", 5)
    assert 1 <= recent.covered_minutes <= 2
    assert 2 <= recent.processing_rate <= 4
    assert 4 <= stats.window("idle", 5).covered_minutes <= 5, "no data: the whole window"


def _dead_letter_total(job_type: str) -> float:
    text = metrics.render().decode()
    return next(s.value for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == "jobs_dead_letter_total"
                and s.labels == {"queue": Q, "job_type": job_type})


def _item(job_id: str, data: str = '{"value": 1}') -> dict[str, object]:
    record = {"id": job_id, "name": "t-echo", "queue": Q, "data": data, "opts": "{}",
              "error_type": "RuntimeError", "error": "boom", "attempts_made": "1",
              "failed_reason": "max_attempts_exceeded", "finished_at": str(store.now_ms())}
    return {"queue": Q, "job_id": job_id, "record": record}


def test_dead_letter_total_counts_rows_written_once_and_not_quarantined(
        r: redis.Redis, builtin_queue_types: None) -> None:
    r.hincrby(keys.stats(Q), "failed|t-echo", 3)  # failures alone are not dead letters
    r.sadd(keys.known_queues(), Q)
    written = _item("j-written")
    assert recording.store_item(written) is not None
    assert recording.store_item(written) is not None, "the same failure delivered twice"
    assert recording.store_item(_item("j-bad", data="{not json")) is None
    assert json.loads(store.quarantined_dead_letters(Q)[0])["job_id"] == "j-bad"
    assert DeadLetter.objects.filter(queue=Q).count() == 1
    assert _dead_letter_total("t-echo") == 1
