"""``GET /metrics``: cluster-wide counters, histogram and gauges read from Redis at scrape time."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import redis
from django.test import Client, override_settings
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from queues.jobs import enqueue, enqueue_many
from queues.store import keys
from tests.redis_plugin import free_port

Q = "photo-processing"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def promtool_check(text: str) -> None:
    """Lint exposition text with ``promtool check metrics`` (the Prometheus project's linter)."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not on PATH; install it (Debian: apt-get install -y "
                    "--no-install-recommends prometheus) so /metrics output can be checked",
                    pytrace=False)
    result = subprocess.run([binary, "check", "metrics"], input=text.encode(),
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert not (result.stdout + result.stderr).strip(), (result.stdout + result.stderr).decode()


def scrape() -> tuple[str, Samples]:
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    text = response.content.decode()
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def buckets(samples: Samples, queue: str, job: str) -> dict[str, float]:
    return {dict(key)["le"]: v for (name, key), v in samples.items()
            if name == "job_processing_duration_seconds_bucket"
            and {("queue", queue), ("job_type", job)} <= key}


def assert_queue_gauges(samples: Samples) -> None:
    gauges = {state: value(samples, f"queue_jobs_{state}", queue=Q)
              for state in ("waiting", "active", "completed", "failed", "delayed")}
    assert gauges == {"waiting": 0, "active": 0, "completed": 5, "failed": 2, "delayed": 0}
    assert value(samples, "queue_paused", queue=Q) == 0
    assert value(samples, "queue_active_workers", queue=Q) == 1
    assert value(samples, "queue_jobs_waiting", queue="batch-processing") == 0
    labels = {name for (_, key) in samples for name, _ in key}
    assert labels == {"queue", "job_type", "le", "reason"}, "no job or worker ids as labels"
    assert {dict(key)["reason"] for (name, key) in samples if name == "queue_jobs_limited"} == {
        "rate_limited", "concurrency_limited"}


@pytest.mark.django_db(transaction=True)
def test_scrape_counts_real_jobs_run_by_a_worker(r: redis.Redis, inprocess_worker: Any) -> None:
    inprocess_worker()
    handles = enqueue_many(Q, "t-echo", [{"value": n} for n in range(3)])
    handles += enqueue_many(Q, "t-always-fails", [{"item": "a"}, {"item": "b"}])
    handles += [enqueue(Q, "t-flaky", {"succeed_on": 2}), enqueue(Q, "t-sleep", {"ms": 60})]
    for handle in handles:
        handle.wait(15)
    text, samples = scrape()

    def job(name: str, *job_types: str) -> list[float]:
        return [value(samples, name, queue=Q, job_type=j) for j in job_types]

    trio = ("t-echo", "t-always-fails", "t-flaky")
    assert job("jobs_scheduled_total", *trio) == [3, 2, 1]
    assert job("jobs_completed_total", *trio) == [3, 0, 1]
    assert job("jobs_failed_total", *trio) == job("jobs_dead_letter_total", *trio) == [0, 2, 0]
    assert job("job_retries_total", *trio) == [0, 0, 1]
    assert job("jobs_stalled_total", *trio) == [0, 0, 0]
    # Every finished job is timed once; the retried attempt of t-flaky is not.
    assert job("job_processing_duration_seconds_count", *trio) == [3, 2, 1]
    slept = buckets(samples, Q, "t-sleep")
    assert slept["0.05"] == 0 and slept["+Inf"] == 1, "a 60 ms job lands above the 50 ms bound"
    assert job("job_processing_duration_seconds_sum", "t-sleep")[0] >= 0.06
    echo = list(buckets(samples, Q, "t-echo").values())
    assert echo == sorted(echo) and echo[-1] == 3, "buckets are cumulative, +Inf is the count"
    assert_queue_gauges(samples)
    promtool_check(text)


@pytest.mark.django_db
def test_per_bucket_counts_become_cumulative_buckets(r: redis.Redis) -> None:
    # The finish script's layout: one count per bucket a duration fell in.
    r.hset(keys.stats("legacy"), mapping={
        "duration|resize|5": 2, "duration|resize|25": 1, "duration|resize|+Inf": 1,
        "duration_sum|resize": 400_010, "completed|resize": 4, "completed": 4,
        "retry_error:LookupError": 1, "scaling_events": 3,
    })
    r.sadd(keys.known_queues(), "legacy")  # known to Redis only, not a registered type
    r.zadd(keys.state_index("legacy", "delayed"), {"a": 1, "b": 2})
    r.hset(keys.meta("legacy"), "paused", "1")
    text, samples = scrape()
    got = buckets(samples, "legacy", "resize")
    assert [got[le] for le in ("0.005", "0.01", "0.025", "0.05", "300.0", "+Inf")] == [
        2, 2, 3, 3, 3, 4]
    assert value(samples, "job_processing_duration_seconds_count", queue="legacy",
                 job_type="resize") == 4
    assert value(samples, "job_processing_duration_seconds_sum", queue="legacy",
                 job_type="resize") == 400.01
    assert value(samples, "jobs_completed_total", queue="legacy", job_type="resize") == 4
    assert value(samples, "queue_jobs_delayed", queue="legacy") == 2
    assert value(samples, "queue_paused", queue="legacy") == 1
    assert value(samples, "worker_scaling_events_total", queue="legacy") == 3
    # Registered queues are reported before any job ran: zeros, scaling events absent -> 0.
    assert value(samples, "worker_scaling_events_total", queue=Q) == 0
    assert value(samples, "jobs_scheduled_total", queue=Q, job_type="process-photo") == 0
    assert value(samples, "queue_active_workers", queue="maintenance") == 0
    promtool_check(text)


@pytest.mark.django_db
def test_unreachable_redis_gives_a_json_503(r: redis.Redis) -> None:
    with override_settings(COORDINATOR_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = Client().get("/metrics")
    assert response.status_code == 503
    assert "Redis is unreachable" in response.json()["error"]
