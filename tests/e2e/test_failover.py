"""A Sentinel failover under load, counted Jepsen-style.

A primary, a replica and three sentinels (``tests.sentinel_group``); a real worker and
this process reach Redis only through the sentinels. Jobs are enqueued without pause;
the primary is SIGKILLed part-way; the replica is promoted. Each job's runs are written
to a ledger file outside Redis, so the count does not depend on what Redis kept:
acknowledged (enqueue returned), completed (in the ledger), duplicated (ran more than
once), lost (acknowledged, never ran, and its record is gone), stuck (acknowledged, its
record exists, not completed when the run ends). Replication is asynchronous: with
``ENQUEUE_DURABILITY=primary`` the last writes before the failover can be lost, and the
test prints how many were; with ``replica`` none may be.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from queues import store
from queues.exceptions import BackendUnavailable
from queues.jobs import enqueue
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import resilience_queue_type, wait_for
from tests.sentinel_group import MASTER, sentinel_group

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
R = t.RESILIENCE
FAST = {"WORKER_STALLED_INTERVAL": "2000", "WORKER_HEARTBEAT_INTERVAL": "500"}
BEFORE_S, AFTER_S = 2.0, 8.0
PACE_S = 0.005  # at most ~200 enqueues a second: a load the worker drains as it comes


def _ledger(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(job_id, int(at)) for job_id, at in
            (line.split() for line in path.read_text().splitlines() if line)]


@pytest.mark.parametrize("durability", ["primary", "replica"])
def test_a_failover_under_load_loses_nothing_acknowledged_with_replica_durability(
        durability: str, builtin_queue_types: None, worker_process: Any,
        tmp_path: Path) -> None:
    resilience_queue_type(stalled_interval_ms=2000, max_stalled_count=20)
    ledger = tmp_path / "ledger"
    with sentinel_group() as group, override_settings(
            COORDINATOR_REDIS_SENTINELS=group.sentinels,
            COORDINATOR_REDIS_SENTINEL_MASTER=MASTER,
            COORDINATOR_REDIS_URL=f"redis://127.0.0.1:{group.primary_port}/0",
            COORDINATOR_ENQUEUE_DURABILITY=durability,
            COORDINATOR_ENQUEUE_REPLICA_TIMEOUT=500):
        worker = worker_process((R,), concurrency=2, name=f"fo-{durability}",
                                env={**group.env, **FAST})
        acknowledged: list[str] = []
        refused = 0
        began = time.monotonic()
        killed_at: float | None = None
        killed_ms = 0
        while time.monotonic() - (killed_at or began) < (AFTER_S if killed_at else BEFORE_S):
            try:
                acknowledged.append(enqueue(R, "t-ledger", {"ledger": str(ledger)}).id)
            except BackendUnavailable:
                refused += 1  # not acknowledged: the client knows to retry
            time.sleep(PACE_S)
            if killed_at is None and time.monotonic() - began >= BEFORE_S:
                killed_ms = store.now_ms()
                killed_at = group.kill_primary()
        group.wait_promoted()

        def settled() -> bool:
            ran = {job_id for job_id, _ in _ledger(ledger)}
            waiting = [j for j in acknowledged if j not in ran]
            return not waiting or all(
                f[0] is None for f in store.fields_of_many(R, waiting, "state"))

        wait_for(settled, timeout=90, interval=0.2)
        runs = Counter(job_id for job_id, _ in _ledger(ledger))
        ran = set(runs)
        missing = [j for j in acknowledged if j not in ran]
        records = store.fields_of_many(R, missing, "state") if missing else []
        lost = sum(1 for f in records if f[0] is None)
        stuck = len(missing) - lost
        duplicated = sum(1 for j in acknowledged if runs[j] > 1)
        after = sorted(at for _, at in _ledger(ledger) if at > killed_ms)
        recovered_ms = after[0] - killed_ms if after else -1
        print(f"\nfailover, ENQUEUE_DURABILITY={durability}: acknowledged {len(acknowledged)}, "
              f"completed {len(ran & set(acknowledged))}, lost {lost}, duplicated {duplicated}, "
              f"stuck {stuck}; enqueues refused during the failover {refused}; first job "
              f"completed {recovered_ms} ms after the primary was killed")
        assert stuck == 0
        assert recovered_ms > 0  # the worker went on without a restart
        if durability == "replica":
            assert lost == 0
        assert store.client().zcard(keys.state_index(R, "completed")) >= 1
        worker.stop()  # while its Redis still runs: a warm shutdown needs it
