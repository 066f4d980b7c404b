"""De-duplication by key (``dedup``): throttle and debounce, alone and from many processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from queues import store
from queues.exceptions import JobValidationError
from queues.jobs import change_priority, enqueue, enqueue_many, get_job
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import ROOT, as_int, text, texts, wait_for, worker_database_url
from tests.integration.test_ops_api import MANAGE, call, jwt_secret  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db
Q = "photo-processing"
HOUR = 3_600_000


def throttle(ttl_ms: int = HOUR, key: str = "k") -> dict[str, Any]:
    return {"dedup": {"key": key, "ttl_ms": ttl_ms}}


def debounce(delay_ms: int, ttl_ms: int = HOUR, key: str = "k") -> dict[str, Any]:
    return {"dedup": {"key": key, "ttl_ms": ttl_ms, "mode": "debounce"}, "delay_ms": delay_ms}


def job_ids(r: redis.Redis) -> list[str]:
    """Every job record in Redis (by key, so a record outside every index counts too)."""
    return sorted(text(k).rsplit("job:", 1)[1] for k in r.scan_iter(match="*job:*"))


def holder(r: redis.Redis, key: str = "k") -> str | None:
    """The job id the dedup key names, or None when it has expired."""
    raw = r.get(keys.dedup(Q, key))
    return None if raw is None else text(raw)


def test_throttle_returns_the_first_job_until_the_key_expires(r: redis.Redis) -> None:
    first = enqueue(Q, "t-echo", {"value": 1}, **throttle(ttl_ms=300))
    second = enqueue(Q, "t-echo", {"value": 2}, **throttle(ttl_ms=300))
    assert (first.created, second.created, second.id) == (True, False, first.id)
    assert job_ids(r) == [first.id] and r.llen(Q) == 1
    assert get_job(Q, first.id).data == {"value": 1, "note": ""}
    assert as_int(r.hget(keys.stats(Q), "scheduled")) == 1
    wait_for(lambda: not r.exists(keys.dedup(Q, "k")), timeout=5)
    third = enqueue(Q, "t-echo", {"value": 3}, **throttle(ttl_ms=300))
    assert third.created and third.id != first.id
    assert job_ids(r) == sorted([first.id, third.id]) and r.llen(Q) == 2
    assert holder(r) == third.id


def test_a_throttled_record_is_the_record_a_plain_enqueue_makes(r: redis.Redis) -> None:
    plain = enqueue(Q, "t-echo", {"value": 1}, delay_ms=HOUR)
    dedup = enqueue(Q, "t-echo", {"value": 1}, delay_ms=HOUR, **throttle())
    a, b = r.hgetall(keys.job(Q, plain.id)), r.hgetall(keys.job(Q, dedup.id))
    assert set(a) == set(b)
    assert json.loads(a[b"opts"]) | {"dedup": None} == json.loads(b[b"opts"]) | {"dedup": None}
    assert r.zscore(keys.state_index(Q, "delayed"), dedup.id) == float(b[b"runnable_at"])


def test_throttle_keeps_returning_a_finished_job_and_starts_over_once_it_is_gone(
        r: redis.Redis) -> None:
    first = enqueue(Q, "t-echo", {"value": 1}, **throttle())
    r.hset(keys.job(Q, first.id), "state", "completed")
    assert enqueue(Q, "t-echo", {"value": 2}, **throttle()).id == first.id
    r.delete(keys.job(Q, first.id))  # trimmed by retention while the key lives
    again = enqueue(Q, "t-echo", {"value": 3}, **throttle())
    assert again.created and holder(r) == again.id


def test_job_id_with_dedup_names_the_new_job_and_keeps_its_own_de_duplication(
        r: redis.Redis) -> None:
    named = enqueue(Q, "t-echo", {"value": 1}, job_id="named", **throttle())
    assert (named.id, named.created) == ("named", True)
    assert enqueue(Q, "t-echo", {"value": 2}, job_id="other", **throttle()).id == "named"
    assert enqueue(Q, "t-echo", {"value": 3}, job_id="named",
                   **throttle(key="k2")).created is False
    assert job_ids(r) == ["named"] and not r.exists(keys.dedup(Q, "k2"))


def test_debounce_keeps_one_delayed_job_with_the_last_payload_due_after_the_last_call(
        r: redis.Redis) -> None:
    handles = []
    for value in (1, 2, 3):
        before = store.now_ms()
        handles.append(enqueue(Q, "t-echo", {"value": value}, **debounce(delay_ms=HOUR)))
        after = store.now_ms()
    assert [h.created for h in handles] == [True, False, False]
    assert len({h.id for h in handles}) == 1
    job = handles[0].id
    assert job_ids(r) == [job] and r.llen(Q) == 0
    info = get_job(Q, job)
    assert (info.state, info.data) == ("delayed", {"value": 3, "note": ""})
    due = r.zscore(keys.state_index(Q, "delayed"), job)
    assert due is not None and before + HOUR <= due <= after + HOUR
    record = r.hgetall(keys.job(Q, job))
    assert float(record[b"runnable_at"]) == due and record[b"gen"] == b"1"
    message = json.loads(record[b"msg"])
    assert (message["headers"]["jq_job"], message["headers"]["jq_gen"]) == (job, 1)
    assert as_int(r.hget(keys.stats(Q), "scheduled")) == 1
    assert 0 < r.pttl(keys.dedup(Q, "k")) <= HOUR


def test_debounce_after_the_job_left_delayed_makes_a_new_job(r: redis.Redis) -> None:
    first = enqueue(Q, "t-echo", {"value": 1}, **debounce(delay_ms=HOUR))
    store.promote_job(Q, first.id)
    second = enqueue(Q, "t-echo", {"value": 2}, **debounce(delay_ms=HOUR))
    assert second.created and second.id != first.id
    assert get_job(Q, first.id).data == {"value": 1, "note": ""}
    assert holder(r) == second.id


def test_debounce_rebuilds_its_message_after_a_priority_change(r: redis.Redis) -> None:
    first = enqueue(Q, "t-echo", {"value": 1}, **debounce(delay_ms=HOUR))
    change_priority(Q, first.id, 4)  # the job moves on to generation 2
    assert enqueue(Q, "t-echo", {"value": 2}, **debounce(delay_ms=HOUR)).id == first.id
    record = r.hgetall(keys.job(Q, first.id))
    message = json.loads(record[b"msg"])
    assert (record[b"gen"], message["headers"]["jq_gen"]) == (b"2", 2)
    assert record[b"broker_key"] == f"{Q}\x06\x164".encode()
    assert get_job(Q, first.id).data == {"value": 2, "note": ""}


def test_debounce_refuses_a_key_held_by_a_delayed_job_of_another_type(r: redis.Redis) -> None:
    echo = enqueue(Q, "t-echo", {"value": 1}, **debounce(delay_ms=HOUR))
    with pytest.raises(JobValidationError) as info:
        enqueue(Q, "t-sleep", {"ms": 1}, **debounce(delay_ms=HOUR))
    assert info.value.field == "dedup.key"
    assert job_ids(r) == [echo.id]


@pytest.mark.parametrize(("opts", "field"), [
    ({"dedup": {"ttl_ms": 1000}}, "dedup.key"),
    ({"dedup": {"key": "", "ttl_ms": 1000}}, "dedup.key"),
    ({"dedup": {"key": "has space", "ttl_ms": 1000}}, "dedup.key"),
    ({"dedup": {"key": "a/b", "ttl_ms": 1000}}, "dedup.key"),
    ({"dedup": {"key": "k" * 201, "ttl_ms": 1000}}, "dedup.key"),
    ({"dedup": {"key": 5, "ttl_ms": 1000}}, "dedup.key"),
    ({"dedup": {"key": "k"}}, "dedup.ttl_ms"),
    ({"dedup": {"key": "k", "ttl_ms": 0}}, "dedup.ttl_ms"),
    ({"dedup": {"key": "k", "ttl_ms": -5}}, "dedup.ttl_ms"),
    ({"dedup": {"key": "k", "ttl_ms": 1.5}}, "dedup.ttl_ms"),
    ({"dedup": {"key": "k", "ttl_ms": True}}, "dedup.ttl_ms"),
    ({"dedup": {"key": "k", "ttl_ms": "1000"}}, "dedup.ttl_ms"),
    ({"dedup": {"key": "k", "ttl_ms": 31 * 86_400_000}}, "dedup.ttl_ms"),
    ({"dedup": {"key": "k", "ttl_ms": 1000, "mode": "coalesce"}}, "dedup.mode"),
    ({"dedup": {"key": "k", "ttl_ms": 1000, "extra": 1}}, "dedup.extra"),
    ({"dedup": "k"}, "dedup"),
    ({"dedup": {"key": "k", "ttl_ms": 1000, "mode": "debounce"}}, "delay_ms"),
    ({"dedup": {"key": "k", "ttl_ms": 1000, "mode": "debounce"}, "delay_ms": 0}, "delay_ms"),
])
def test_bad_dedup_options_are_refused_and_write_nothing(
        r: redis.Redis, opts: dict[str, Any], field: str) -> None:
    with pytest.raises(JobValidationError) as info:
        enqueue(Q, "t-echo", {"value": 1}, **opts)
    assert info.value.field == field
    assert r.dbsize() == 0


def test_enqueue_many_refuses_dedup(r: redis.Redis) -> None:
    with pytest.raises(JobValidationError, match="one job at a time") as info:
        enqueue_many(Q, "t-echo", [{"value": 1}, {"value": 2}], **throttle())
    assert info.value.field == "dedup"
    assert r.dbsize() == 0


@pytest.mark.usefixtures("jwt_secret")
def test_the_api_takes_dedup_and_answers_422_for_bad_ones(r: redis.Redis) -> None:
    body = {"name": "t-echo", "data": {"value": 1}, "options": throttle()}
    first = call("post", f"/queues/{Q}/jobs", MANAGE, body)
    second = call("post", f"/queues/{Q}/jobs", MANAGE, {**body, "data": {"value": 2}})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == {"id": first.json()["id"], "created": False}
    for options, field in [({"dedup": {"key": "k", "ttl_ms": 0}}, "dedup.ttl_ms"),
                           ({"dedup": {"key": "k", "ttl_ms": 9, "mode": "debounce"}}, "delay_ms")]:
        bad = call("post", f"/queues/{Q}/jobs", MANAGE, {**body, "options": options})
        assert bad.status_code == 422, bad.content
        assert bad["Content-Type"].startswith("application/json")
        assert bad.json()["field"] == field
    assert job_ids(r) == [first.json()["id"]]


@pytest.mark.django_db(transaction=True)  # the worker reads queue types from the same database
def test_a_debounced_job_runs_once_with_the_last_payload(
        builtin_queue_types: None, r: redis.Redis, worker_process: Any) -> None:
    worker_process((Q,), pool="solo", concurrency=1)
    handles = [enqueue(Q, "t-echo", {"value": v}, remove_on_complete=False,
                       **debounce(delay_ms=2000, key="run-once")) for v in (1, 2, 3)]
    job = handles[0].id
    assert {h.id for h in handles} == {job}
    info = handles[0].wait(timeout=60)
    assert (info.state, info.result["value"]) == ("completed", 3)
    assert as_int(r.get(t.runs_key(job))) == 1
    assert job_ids(r) == [job]


# Each process: set Django up, wait at the barrier, then enqueue ``calls`` times with
# one dedup key as fast as it can; print [[id, created], ...] as JSON.
ENQUEUER = """
import json, os, sys, time
import django
import redis
django.setup()
from queues.jobs import enqueue
mode, calls, me = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
barrier = redis.Redis.from_url(os.environ["REDIS_URL"])
barrier.incr("test:ready")
while not barrier.exists("test:go"):
    time.sleep(0.005)
opts = {"dedup": {"key": "shared", "ttl_ms": 3600000, "mode": mode}}
if mode == "debounce":
    opts["delay_ms"] = 3600000
out = [enqueue("photo-processing", "t-echo", {"value": me * 1000 + i}, **opts)
       for i in range(calls)]
print(json.dumps([[h.id, h.created] for h in out]))
"""


@pytest.fixture
def enqueuers(django_db_blocker: Any,
              r: redis.Redis) -> Iterator[Callable[[str, int, int], list[list[Any]]]]:
    """Run N enqueuer processes at once; each one's [[id, created], ...]."""
    with django_db_blocker.unblock():
        env = {**os.environ, "DATABASE_URL": worker_database_url(),
               "DJANGO_SETTINGS_MODULE": "coordinator_project.settings"}
    procs: list[subprocess.Popen[bytes]] = []

    def run(mode: str, processes: int, calls: int) -> list[list[Any]]:
        for me in range(processes):
            procs.append(subprocess.Popen(
                [sys.executable, "-c", ENQUEUER, mode, str(calls), str(me)], cwd=ROOT, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        wait_for(lambda: int(r.get("test:ready") or 0) == processes
                 or any(p.poll() is not None for p in procs), timeout=120)
        r.set("test:go", 1)
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()[-3000:]
            results.extend(json.loads(out))
        return results

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


PROCESSES, CALLS = 6, 40


def test_concurrent_throttles_from_many_processes_make_one_job(
        r: redis.Redis, enqueuers: Callable[[str, int, int], list[list[Any]]]) -> None:
    results = enqueuers("throttle", PROCESSES, CALLS)
    assert len(results) == PROCESSES * CALLS
    [job] = job_ids(r)
    assert {job_id for job_id, _ in results} == {job}
    assert sum(created for _, created in results) == 1
    assert r.llen(Q) == 1 and texts(r.zrange(keys.state_index(Q, "waiting"), 0, -1)) == [job]


def test_concurrent_debounces_from_many_processes_make_one_job_with_a_sent_payload(
        r: redis.Redis, enqueuers: Callable[[str, int, int], list[list[Any]]]) -> None:
    results = enqueuers("debounce", PROCESSES, CALLS)
    [job] = job_ids(r)
    assert {job_id for job_id, _ in results} == {job}
    assert sum(created for _, created in results) == 1
    value = get_job(Q, job).data["value"]
    assert divmod(value, 1000)[0] < PROCESSES and value % 1000 < CALLS
    # The last applied call is the last call of some process (each one's calls are in order).
    assert value % 1000 == CALLS - 1
    record = r.hgetall(keys.job(Q, job))
    assert json.loads(record[b"msg"])["headers"]["jq_job"] == job
    assert r.zscore(keys.state_index(Q, "delayed"), job) == float(record[b"runnable_at"])
    assert r.llen(Q) == 0
