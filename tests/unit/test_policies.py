"""The pure policy functions: backoff, the scaling formula, health rules and score, beat ticks.

No I/O: each function is called with plain values (settings through
``override_settings``, which touches nothing outside the process).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab, schedule
from django.test import override_settings
from django_celery_beat.clockedschedule import clocked
from django_celery_beat.tzcrontab import TzAwareCrontab

from queues.exceptions import ValidationError
from queues.jobs.retry import JITTER, RetryDecision, backoff_delay, decide
from queues.ops import health
from queues.ops.beat import nominal_tick
from queues.options import Backoff, JobOptions
from queues.registry import QueueTypeSpec
from workers.scaling import QueueMetrics, clamp, recommended_processes

# --- Backoff (queues.jobs.retry) -------------------------------------------------------------


def test_fixed_backoff_is_the_same_after_every_attempt() -> None:
    fixed = Backoff(type="fixed", delay=500)
    assert [backoff_delay(n, fixed, rand=0.0) for n in (1, 2, 5, 20)] == [500] * 4


def test_exponential_backoff_doubles_from_the_base_delay() -> None:
    exp = Backoff(type="exponential", delay=100, max_delay=10**9)
    assert [backoff_delay(n, exp, rand=0.0) for n in range(1, 6)] == [100, 200, 400, 800, 1600]


@pytest.mark.parametrize("kind", ["fixed", "exponential"])
def test_jitter_adds_up_to_ten_percent(kind: str) -> None:
    policy = Backoff(type=kind, delay=1000, max_delay=10**9)
    assert JITTER == 0.10
    assert backoff_delay(1, policy, rand=0.5) == 1050
    assert backoff_delay(1, policy, rand=0.999) == 1100
    drawn = {backoff_delay(1, policy) for _ in range(200)}
    assert all(1000 <= d <= 1100 for d in drawn) and len(drawn) > 1, "random jitter"


def test_jitter_is_applied_before_the_cap() -> None:
    # base 7500 with a cap of 8000: jitter after the cap would give up to 8250.
    policy = Backoff(type="exponential", delay=7500, max_delay=8000)
    assert backoff_delay(1, policy, rand=0.999) == 8000
    assert backoff_delay(1, policy, rand=0.5) == 7875, "under the cap, jitter stays"


def test_the_cap_bounds_exponential_growth() -> None:
    policy = Backoff(type="exponential", delay=2000, max_delay=300_000)
    assert backoff_delay(8, policy, rand=0.0) == 256_000
    assert [backoff_delay(n, policy, rand=0.0) for n in (9, 30, 200)] == [300_000] * 3


def test_decide_retries_until_attempts_are_exhausted() -> None:
    policy = Backoff(type="exponential", delay=100)
    decision = decide(RuntimeError("x"), attempt=2, max_attempts=3, backoff=policy)
    assert isinstance(decision, RetryDecision) and 200 <= decision.delay_ms <= 220
    assert decide(RuntimeError("x"), attempt=3, max_attempts=3, backoff=policy) is None
    assert decide(ValidationError(), attempt=1, max_attempts=3, backoff=policy) is None
    assert decide(KeyError("k"), attempt=1, max_attempts=3, backoff=policy,
                  dont_retry=(KeyError,)) is None


# --- The scaling formula and its clamp (workers.scaling) --------------------------------

def metrics(**kw: Any) -> QueueMetrics:
    base = {"waiting": 0, "active": 0, "current_processes": 0, "processing_rate": 0.0,
            "average_processing_time": 0.0}
    return QueueMetrics(**{**base, **kw})


def test_processes_from_the_measured_rate_per_process() -> None:
    # 60 jobs/min over 2 processes = 30 per process per minute; a 60 s target
    # clears 30 per process, so 90 waiting need 3, times the factor 1.5 -> 5.
    m = metrics(waiting=90, current_processes=2, processing_rate=60.0)
    assert recommended_processes(m, target_ms=60_000, factor=1.5) == 5
    assert recommended_processes(m, target_ms=60_000, factor=1.0) == 3


def test_without_a_rate_the_processing_time_stands_in() -> None:
    # 2 s per job = 30/min per process; a 30 s target clears 15 each: 100 waiting -> 7.
    m = metrics(waiting=100, current_processes=0, average_processing_time=2000.0)
    assert recommended_processes(m, target_ms=30_000, factor=1.0) == 7


def test_with_neither_one_job_per_minute_is_assumed_and_nothing_divides_by_zero() -> None:
    m = metrics(waiting=10, current_processes=0)
    assert recommended_processes(m, target_ms=60_000, factor=1.0) == 10


def test_an_empty_queue_shrinks_but_never_below_the_running_jobs() -> None:
    assert recommended_processes(metrics(current_processes=10), target_ms=1, factor=2) == 7
    assert recommended_processes(metrics(current_processes=10, active=9), target_ms=1,
                                 factor=2) == 9


def test_clamp_keeps_min_max_and_steps() -> None:
    assert clamp(6, current=4, low=1, high=10, up_step=5, down_step=5) == 6, "inside: as wanted"
    assert clamp(50, current=8, low=1, high=10, up_step=5, down_step=5) == 10, "max"
    assert clamp(0, current=3, low=2, high=10, up_step=5, down_step=5) == 2, "min"
    assert clamp(50, current=3, low=1, high=10, up_step=2, down_step=5) == 5, "up step"
    assert clamp(0, current=9, low=1, high=10, up_step=5, down_step=3) == 6, "down step"


# --- Health rules and the performance score (queues.health) ------------------------------

SPEC = QueueTypeSpec(name="q", display_name="Q", job_types=(), default_options=JobOptions(),
                     stalled_interval_ms=30000, max_stalled_count=1, concurrency=None,
                     min_workers=1, max_workers=4, scaling_threshold=50)
CALM = health.QueueHealthMetrics(
    job_counts={"waiting": 0}, active_workers=1, is_paused=False, processing_rate=10.0,
    average_wait_time=100.0, average_processing_time=50.0, error_rate=0.0,
    processing_window_minutes=5, error_window_minutes=60)


def rules(**changes: Any) -> list[tuple[str, str]]:
    found = health._issues(SPEC, dataclasses.replace(CALM, **changes))
    return [(issue.rule, issue.severity) for issue in found]


def status_of(**changes: Any) -> str:
    return health._status(tuple(health._issues(SPEC, dataclasses.replace(CALM, **changes))))


def test_a_calm_queue_has_no_issue() -> None:
    assert rules() == [] and status_of() == "healthy"


@pytest.mark.parametrize(("changes", "expected", "status"), [
    ({"job_counts": {"waiting": 1001}}, [("backlog", "warning")], "degraded"),
    ({"job_counts": {"waiting": 1000}}, [("scaling_threshold", "info")], "healthy"),
    ({"job_counts": {"waiting": 51}}, [("scaling_threshold", "info")], "healthy"),
    ({"job_counts": {"waiting": 50}}, [], "healthy"),
    ({"job_counts": {"waiting": 1}, "active_workers": 0}, [("no_workers", "critical")],
     "unhealthy"),
    ({"active_workers": 0}, [], "healthy"),
    ({"error_rate": 0.11}, [("error_rate", "warning")], "degraded"),
    ({"error_rate": 0.1}, [], "healthy"),
    ({"is_paused": True}, [("paused", "warning")], "degraded"),
    ({"quarantined_dead_letters": 1}, [("dead_letter_quarantine", "warning")], "degraded"),
    ({"quarantined_messages": 3}, [("message_quarantine", "warning")], "degraded"),
    ({"average_wait_time": 300_001.0}, [("wait_time", "warning")], "degraded"),
    ({"average_wait_time": 300_000.0}, [], "healthy"),
])
def test_each_health_rule(changes: dict[str, Any], expected: list[tuple[str, str]],
                          status: str) -> None:
    assert rules(**changes) == expected
    assert status_of(**changes) == status


def test_thresholds_come_from_settings() -> None:
    with override_settings(COORDINATOR_HEALTH_MAX_WAITING=10,
                           COORDINATOR_HEALTH_MAX_ERROR_RATE=0.5):
        assert rules(job_counts={"waiting": 11}) == [("backlog", "warning")]
        assert rules(error_rate=0.4) == []


def test_critical_outranks_warnings() -> None:
    assert status_of(job_counts={"waiting": 2000}, active_workers=0, is_paused=True) == "unhealthy"


def analysis(**kw: Any) -> health.BottleneckAnalysis:
    base = {"queue_name": "q", "queue_depth": 0, "avg_processing_time": 0.0, "throughput": 0.0,
            "error_rate": 0.0, "workers": 1, "utilisation": 0.0, "memory_rss_bytes": 0,
            "memory_usage": None, "cpu_usage": 0.0, "window_minutes": 5}
    return health.BottleneckAnalysis(**{**base, **kw})


def test_an_idle_healthy_queue_scores_full_marks() -> None:
    assert health.performance_score(analysis()) == 100.0


def test_performance_score_is_the_mean_of_queue_throughput_and_error_scores() -> None:
    # depth 500 -> queue 50; 50 jobs/min clear 250 of 500 in the 5-min wait budget -> 50;
    # 20 % errors -> 80. Mean: 60.
    assert health.performance_score(analysis(queue_depth=500, throughput=50.0,
                                             error_rate=0.2)) == 60.0


def test_performance_score_parts_are_bounded() -> None:
    assert health.performance_score(analysis(queue_depth=5000, error_rate=1.0)) == 0.0
    fast = analysis(queue_depth=10, throughput=10_000.0)  # throughput part capped at 100
    assert health.performance_score(fast) == round((99 + 100 + 100) / 3, 1)
    with override_settings(COORDINATOR_HEALTH_MAX_AVERAGE_WAIT=60_000):
        assert health.performance_score(analysis(queue_depth=100, throughput=50.0)) == round(
            (90 + 50 + 100) / 3, 1)


# --- The beat tick (queues.ops.beat.nominal_tick) -------------------------------------------

def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_an_interval_tick_is_the_multiple_of_its_period() -> None:
    every = schedule(timedelta(seconds=30))
    assert nominal_tick(every, at("2025-01-01T12:00:31.700")) == at("2025-01-01T12:00:30")
    assert nominal_tick(every, at("2025-01-01T12:00:57.9")) == at("2025-01-01T12:00:30")


def test_a_tick_tolerates_a_beat_that_fires_up_to_two_seconds_early() -> None:
    every = schedule(timedelta(seconds=30))
    assert nominal_tick(every, at("2025-01-01T12:00:28.5")) == at("2025-01-01T12:00:30")
    assert nominal_tick(every, at("2025-01-01T12:00:27.9")) == at("2025-01-01T12:00:00")


def test_two_beats_firing_the_same_tick_agree() -> None:
    every = schedule(timedelta(minutes=5))
    ticks = {nominal_tick(every, at(t)) for t in ("2025-01-01T12:05:00", "2025-01-01T12:05:01.3",
                                                   "2025-01-01T12:04:58.5")}
    assert ticks == {at("2025-01-01T12:05:00")}


def test_a_crontab_tick_is_its_previous_fire_time() -> None:
    cron = crontab(minute="*/5")
    assert nominal_tick(cron, at("2025-01-01T12:07:10")) == at("2025-01-01T12:05:00")
    assert nominal_tick(cron, at("2025-01-01T12:04:59")) == at("2025-01-01T12:05:00"), "early"
    assert nominal_tick(cron, at("2025-01-01T12:04:57")) == at("2025-01-01T12:00:00")


def test_a_crontab_tick_is_in_its_timezone() -> None:
    paris = ZoneInfo("Europe/Paris")
    cron = TzAwareCrontab(minute="0", hour="9", tz=paris)
    tick = nominal_tick(cron, at("2025-01-15T08:00:30"))  # 09:00:30 in Paris (UTC+1)
    assert tick == datetime(2025, 1, 15, 9, 0, tzinfo=paris)
    assert tick.astimezone(UTC) == at("2025-01-15T08:00:00")


def test_a_one_off_schedule_uses_the_whole_second() -> None:
    once = clocked(at("2025-01-01T08:41:12"))
    assert nominal_tick(once, at("2025-01-01T08:41:12.345")) == at("2025-01-01T08:41:12")
