"""Rate limits, global concurrency and group fairness across several real worker processes.

Every figure is read back from the job records: a job is active from its claim
(``processed_at``, set by the claim script) to its finish (``finished_at``, set by
the finish script), the same scripts that enforce the limits.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from queues import store
from queues.jobs import JobHandle, enqueue_many
from queues.ops import limits
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import resilience_queue_type, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
R = t.RESILIENCE


@pytest.fixture
def queue(builtin_queue_types: None) -> Any:
    return resilience_queue_type(stalled_interval_ms=30000, max_stalled_count=1)


def _spans(handles: list[JobHandle]) -> list[tuple[int, int]]:
    """(claimed, finished) in ms of each job, in the order given."""
    rows = store.fields_of_many(R, [h.id for h in handles], "processed_at", "finished_at")
    return [(int(start or 0), int(end or 0)) for start, end in rows]


def _done(handles: list[JobHandle]) -> bool:
    return all(end for _, end in _spans(handles))


def _most_at_once(spans: list[tuple[int, int]]) -> int:
    """The largest number of jobs active at one instant ([claimed, finished) each)."""
    events = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    most = running = 0
    for _, change in events:  # at one instant a finish (-1) sorts before a claim
        running += change
        most = max(most, running)
    return most


def test_global_concurrency_holds_across_two_workers_and_is_used_to_the_full(
        queue: Any, worker_process: Any) -> None:
    limits.set_limits(R, {"concurrency": 3})
    for name in ("c1", "c2"):
        worker_process((R,), concurrency=4, name=name)
    handles = enqueue_many(R, "t-work", [{"ms": 400} for _ in range(24)])
    wait_for(lambda: _done(handles), timeout=60)
    spans = _spans(handles)
    assert _most_at_once(spans) == 3  # never more, and reached
    busy = sum(end - start for start, end in spans)
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    assert busy / elapsed >= 0.9 * 3, f"{busy / elapsed:.2f} jobs running on average"
    assert sum(int(store.client().get(t.runs_key(h.id)) or 0) for h in handles) == 24


def test_a_rate_limit_holds_in_every_window_across_two_workers_and_is_reached(
        queue: Any, worker_process: Any) -> None:
    limits.set_limits(R, {"rate_limit": {"max": 10, "duration_ms": 1000}})
    for name in ("r1", "r2"):
        worker_process((R,), concurrency=4, name=name)
    handles = enqueue_many(R, "t-work", [{"ms": 5} for _ in range(40)])
    wait_for(lambda: _done(handles), timeout=60)
    starts = sorted(start for start, _ in _spans(handles))
    # any window of 1,000 ms holds at most 10 starts
    assert max(sum(1 for s in starts if first <= s < first + 1000) for first in starts) == 10
    # 40 jobs in four windows: the fourth ten start in the window beginning at 3,000 ms
    rate = len(starts) / ((starts[-1] - starts[0] + 1000) / 1000)
    assert rate >= 0.9 * 10, (f"{rate:.2f} jobs/s against a limit of 10/s; starts at "
                              f"{[s - starts[0] for s in starts]} ms")


def test_a_small_tenant_is_served_before_the_big_tenants_200th_job(
        queue: Any, worker_process: Any) -> None:
    limits.set_limits(R, {"concurrency": 2})
    # Both backlogs exist before a worker starts: 100,000 jobs of one tenant, then ten
    # of another.
    big = enqueue_many(R, "t-work", [{"ms": 0} for _ in range(100_000)], group="big")
    small = enqueue_many(R, "t-work", [{"ms": 0} for _ in range(10)], group="small")
    worker_process((R,), concurrency=2, name="fair")
    wait_for(lambda: _done(small), timeout=60)
    last_small = max(start for start, _ in _spans(small))
    big_before = sum(1 for start, _ in _spans(big[:1000]) if 0 < start <= last_small)
    assert big_before < 200, f"{big_before} of the big tenant's jobs started first"
    assert _spans(big[1000:1001]) == [(0, 0)]  # and the big backlog is still there


def test_a_limit_raised_at_runtime_is_used_by_running_workers_within_a_second(
        queue: Any, worker_process: Any) -> None:
    limits.set_limits(R, {"concurrency": 1})
    worker_process((R,), concurrency=4, name="live")
    enqueue_many(R, "t-work", [{"ms": 3000} for _ in range(8)])
    active = keys.state_index(R, "active")
    wait_for(lambda: store.client().zcard(active) == 1, timeout=30)
    changed = time.monotonic()
    limits.set_limits(R, {"concurrency": 3})
    wait_for(lambda: store.client().zcard(active) == 3, timeout=10)
    # the gate duty of every worker pumps at least once a second (workers.bootsteps)
    assert time.monotonic() - changed < 2.5
    limits.set_limits(R, {"concurrency": 1})  # lowered: running jobs end, none starts
    assert store.client().zcard(active) == 3
