"""The stuck-worker rule (``queues.store.workers.is_stuck``) as a pure function: no Redis."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from queues.store.workers import Consumption, consumption, is_stuck

NOW = 10_000_000
AFTER = 60_000
LONG_AGO = NOW - 10 * AFTER


def figures(**changes: Any) -> Consumption:
    """A worker that started long ago, never took a job, has a slot and old work waiting."""
    base = Consumption(started_at=LONG_AGO, last_claim=None, free_slots=1,
                       oldest_waiting=NOW - AFTER - 1)
    return dataclasses.replace(base, **changes)


def test_a_worker_with_a_free_slot_that_took_nothing_while_work_waited_is_stuck() -> None:
    assert is_stuck(figures(), NOW, after=AFTER)


@pytest.mark.parametrize(("changes", "why"), [
    ({"free_slots": 0}, "every slot runs a job: busy, not stuck"),
    ({"free_slots": -1}, "more jobs than slots (the pool shrank under them)"),
    ({"oldest_waiting": None}, "nothing waits in its unpaused queues"),
    ({"oldest_waiting": NOW - AFTER}, "the oldest job has waited exactly the threshold"),
    ({"last_claim": NOW - AFTER}, "it took a job within the threshold"),
    ({"last_claim": NOW - 5}, "it took a job just now"),
    ({"started_at": NOW - AFTER + 1}, "it started within the threshold"),
])
def test_not_stuck(changes: dict[str, Any], why: str) -> None:
    assert not is_stuck(figures(**changes), NOW, after=AFTER), why


def test_an_old_claim_counts_like_none() -> None:
    assert is_stuck(figures(last_claim=NOW - AFTER - 1), NOW, after=AFTER)


def test_the_threshold_decides() -> None:
    waited_two_seconds = figures(oldest_waiting=NOW - 2000, last_claim=NOW - 3000)
    assert not is_stuck(waited_two_seconds, NOW, after=AFTER)
    assert is_stuck(waited_two_seconds, NOW, after=1000)


def test_consumption_reads_a_worker_hash_and_its_queues_oldest_jobs() -> None:
    row = {"queues": json.dumps(["a", "b", "c"]), "started_at": "5", "concurrency": "4",
           "active_jobs": "1", "last_claim_ms": "7"}
    got = consumption(row, {"a": 300, "b": None, "c": 200, "other": 1})
    assert got == Consumption(started_at=5, last_claim=7, free_slots=3, oldest_waiting=200)


def test_consumption_of_a_worker_that_never_claimed_with_nothing_waiting() -> None:
    row = {"queues": json.dumps(["a"]), "started_at": "5", "concurrency": "1",
           "active_jobs": "1"}
    assert consumption(row, {"a": None}) == Consumption(5, None, 0, None)


def test_the_threshold_is_read_from_the_environment() -> None:
    import os
    import subprocess
    import sys

    read = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from queues.conf import settings;"
         " print(settings.WORKER_STUCK_AFTER)"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "coordinator_project.settings",
             "WORKER_STUCK_AFTER": "1234"}, capture_output=True, text=True, check=True)
    assert read.stdout.strip() == "1234"
