"""Queue-type worker settings with real worker processes: pool size and the retry pause."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psutil
import pytest

from queues.models import QueueType
from tests.conftest import WorkerProcess, wait_for
from tests.redis_plugin import RedisServer
from workers import presence

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
FAST = {"WORKER_HEARTBEAT_INTERVAL": "300"}


def _pool_sizes(queue: str) -> dict[str, int]:
    """Pool size by worker name, as each worker's heartbeat reports it."""
    return {w.id.split("@")[0]: w.concurrency for w in presence.list_workers(queue)}


def _children(worker: WorkerProcess) -> int:
    return len(psutil.Process(worker.pid).children())


def test_queue_type_concurrency_sizes_the_pool_unless_c_is_given(
        builtin_queue_types: None, worker_process: Any) -> None:
    QueueType.objects.create(name="pool-sized", display_name="Pool sized", concurrency=3)
    sized = worker_process(("pool-sized",), concurrency=None, name="sized", env=FAST)
    worker_process(("pool-sized",), concurrency=1, name="given", env=FAST)
    # Two queues: no single queue type decides, DEFAULT_WORKER_CONCURRENCY does.
    worker_process(("pool-sized", "maintenance"), concurrency=None, name="two",
                   env={**FAST, "DEFAULT_WORKER_CONCURRENCY": "2"})
    wait_for(lambda: len(_pool_sizes("pool-sized")) == 3)
    assert _pool_sizes("pool-sized") == {"sized": 3, "given": 1, "two": 2}
    wait_for(lambda: _children(sized) == 3)


def test_a_queue_type_without_concurrency_leaves_the_global(
        builtin_queue_types: None, worker_process: Any) -> None:
    worker_process(("maintenance",), concurrency=None, name="plain",
                   env={**FAST, "DEFAULT_WORKER_CONCURRENCY": "2"})
    wait_for(lambda: _pool_sizes("maintenance"))
    assert _pool_sizes("maintenance") == {"plain": 2}


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, so stopping it leaves the session's alone."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def _skips(worker: WorkerProcess, duty: str) -> list[datetime]:
    """When the worker logged ``<duty> skipped`` (JSON log lines)."""
    times = []
    for line in worker.log.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"{duty} skipped: ' in line:
            entry = json.loads(line)
            times.append(datetime.strptime(entry["time"], "%Y-%m-%d %H:%M:%S,%f"))
    return times


def _gaps(times: list[datetime]) -> list[float]:
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


def test_duties_wait_the_retry_process_delay_after_a_redis_error(
        builtin_queue_types: None, worker_process: Any, own_redis: RedisServer) -> None:
    QueueType.objects.create(name="slow-retry", display_name="Slow", retry_process_delay_ms=4000)
    QueueType.objects.create(name="fast-retry", display_name="Fast", retry_process_delay_ms=300)
    env = {"REDIS_URL": own_redis.url, "LOG_FORMAT": "json"}
    slow = worker_process(("slow-retry",), concurrency=1, name="slow", env=env)
    fast = worker_process(("fast-retry",), concurrency=1, name="fast", env=env)
    own_redis.stop()
    wait_for(lambda: len(_skips(fast, "promote")) >= 4, timeout=30)
    wait_for(lambda: len(_skips(slow, "promote")) >= 3, timeout=30)
    slow_gaps, fast_gaps = _gaps(_skips(slow, "promote")), _gaps(_skips(fast, "promote"))
    assert min(slow_gaps) >= 3.99, slow_gaps  # log times are truncated to ms
    # The shorter delay of the other queue type really is shorter: the pause is the setting's.
    assert min(fast_gaps) < 2.0, fast_gaps
