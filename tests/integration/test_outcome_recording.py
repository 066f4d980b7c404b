"""An attempt's outcome is stored even if Redis is briefly unreachable as the job ends."""

from __future__ import annotations

import time

import pytest

from queues.exceptions import BackendUnavailable
from queues.jobs.task import when_redis_answers
from tests.conftest import resilience_queue_type

pytestmark = pytest.mark.django_db


class Flaky:
    """Raises ``BackendUnavailable`` the first ``failures`` calls, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise BackendUnavailable("Redis is unreachable: connection refused")
        return "recorded"


def test_the_outcome_is_recorded_once_redis_answers() -> None:
    resilience_queue_type(stalled_interval_ms=5000, max_stalled_count=1)
    record = Flaky(failures=3)
    assert when_redis_answers("resilience", record) == "recorded"
    assert record.calls == 4


def test_it_gives_up_after_the_queues_lock_time() -> None:
    resilience_queue_type(stalled_interval_ms=300, max_stalled_count=1)
    record = Flaky(failures=10_000)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        when_redis_answers("resilience", record)
    assert time.monotonic() - started < 5  # bounded by the lock time, not the failures
    assert 1 < record.calls < 10_000
