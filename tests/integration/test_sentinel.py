"""The job store through Redis Sentinel: it follows a failover, and replica durability.

Each test runs its own primary, replica and three sentinels (``tests.sentinel_group``);
the suite's own Redis stays what the rest of the process uses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, override_settings

from queues import store
from queues.exceptions import BackendUnavailable, NotReplicated
from queues.jobs import enqueue, get_job
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import resilience_queue_type
from tests.sentinel_group import MASTER, SentinelGroup, sentinel_group

pytestmark = pytest.mark.django_db
R = t.RESILIENCE


@pytest.fixture
def group(db: None) -> Iterator[SentinelGroup]:
    resilience_queue_type(stalled_interval_ms=30000, max_stalled_count=1)
    with sentinel_group() as running, override_settings(
            COORDINATOR_REDIS_SENTINELS=running.sentinels,
            COORDINATOR_REDIS_SENTINEL_MASTER=MASTER,
            COORDINATOR_REDIS_URL=f"redis://127.0.0.1:{running.primary_port}/0"):
        yield running


def _enqueue_when_it_can(deadline_s: float) -> tuple[Any, float]:
    """Enqueue, retrying while no master answers; the handle and the seconds it took."""
    began = time.monotonic()
    while True:
        try:
            return enqueue(R, "t-work", {"n": 1}), time.monotonic() - began
        except BackendUnavailable:
            if time.monotonic() - began > deadline_s:
                raise
            time.sleep(0.05)


def test_the_job_store_follows_the_master_across_a_failover(group: SentinelGroup) -> None:
    before = enqueue(R, "t-work", {"n": 0})
    assert store.ping(0.5) == ("ok", "master")
    replica = group.client(group.replica_port)
    deadline = time.monotonic() + 5
    while not replica.exists(keys.job(R, before.id)) and time.monotonic() < deadline:
        time.sleep(0.02)
    group.kill_primary()
    after, waited = _enqueue_when_it_can(deadline_s=30)
    group.wait_promoted()
    # the same client, no restart: it asked the sentinels again
    assert replica.exists(keys.job(R, after.id)) and get_job(R, before.id).state == "waiting"
    assert store.ping(0.5) == ("ok", "master")
    assert waited < 30


def test_replica_durability_returns_once_a_replica_has_the_job(group: SentinelGroup) -> None:
    replica = group.client(group.replica_port)
    with override_settings(COORDINATOR_ENQUEUE_DURABILITY="replica",
                           COORDINATOR_ENQUEUE_REPLICA_TIMEOUT=300):
        handle = enqueue(R, "t-work", {"n": 0})
        assert replica.exists(keys.job(R, handle.id))  # at once: WAIT confirmed it
        group.pause(group.replica_port)
        try:
            began = time.monotonic()
            with pytest.raises(NotReplicated, match="no replica confirmed the enqueue within "
                                                    "300 ms"):
                enqueue(R, "t-work", {"n": 1})
            assert time.monotonic() - began < 5
        finally:
            group.resume(group.replica_port)


def test_a_process_pointed_at_a_replica_is_not_ready(group: SentinelGroup, client: Client
                                                    ) -> None:
    with override_settings(COORDINATOR_REDIS_SENTINELS=(),
                           COORDINATOR_REDIS_URL=f"redis://127.0.0.1:{group.replica_port}/0"):
        status, role = store.ping(0.5)
        assert role == "slave" and "takes no writes" in status
        resp = client.get("/ready")
        assert resp.status_code == 503
        assert resp.json()["redis_role"] == "slave" and "redis" in resp.json()["failing"]
    resp = client.get("/ready")
    assert resp.status_code == 200 and resp.json()["redis_role"] == "master"


def test_sentinels_with_a_password_need_redis_sentinel_password(db: None) -> None:
    resilience_queue_type(stalled_interval_ms=30000, max_stalled_count=1)
    with sentinel_group(sentinel_password="s3ntinel") as running:
        common = {"COORDINATOR_REDIS_SENTINELS": running.sentinels,
                  "COORDINATOR_REDIS_SENTINEL_MASTER": MASTER,
                  "COORDINATOR_REDIS_URL": f"redis://127.0.0.1:{running.primary_port}/0"}
        with override_settings(**common, COORDINATOR_REDIS_SENTINEL_PASSWORD="s3ntinel"):
            handle = enqueue(R, "t-work", {"n": 0})
            assert get_job(R, handle.id).state == "waiting"
        with override_settings(**common), pytest.raises(BackendUnavailable):
            enqueue(R, "t-work", {"n": 1})
