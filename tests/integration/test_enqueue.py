"""Enqueue against a real Redis: records, messages, validation, de-duplication."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis
from django.test import override_settings

from queues.exceptions import (
    JobValidationError,
    PayloadTooLarge,
    QueueTypeNotFound,
    UnknownJobType,
)
from queues.jobs import enqueue, enqueue_many, get_job
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import as_int, text_map

pytestmark = pytest.mark.django_db
Q = "photo-processing"


def broker_messages(r: redis.Redis, queue: str = Q, priority: int = 0) -> list[dict]:
    key = queue if priority == 0 else f"{queue}\x06\x16{priority}"
    return [json.loads(raw) for raw in r.lrange(key, 0, -1)]


def test_delay_records_a_waiting_job_and_publishes_one_message(r: redis.Redis) -> None:
    handle = t.echo.delay(value=3)
    info = get_job(Q, handle.id)
    assert (info.state, info.data, info.attempts, info.max_attempts) == (
        "waiting", {"value": 3, "note": ""}, 0, 3)
    assert r.zscore(keys.state_index(Q, "waiting"), handle.id) is not None
    [msg] = broker_messages(r)
    assert msg["headers"]["task"] == "photo-processing:t-echo"
    assert msg["headers"]["jq_job"] == handle.id and msg["headers"]["jq_gen"] == 1
    assert msg["properties"]["delivery_info"]["routing_key"] == Q


def test_apply_async_and_enqueue_by_name_are_the_same_path(r: redis.Redis) -> None:
    a = t.echo.apply_async(({"value": 1},), priority=2)
    b = enqueue(Q, "t-echo", {"value": 2}, priority=2)
    assert get_job(Q, a.id).priority == get_job(Q, b.id).priority == 2
    assert len(broker_messages(r, priority=2)) == 2


@pytest.mark.parametrize(("call", "error", "field"), [
    (lambda: enqueue("no-such-queue", "t-echo", {"value": 1}), QueueTypeNotFound, None),
    (lambda: enqueue(Q, "no-such-job", {"value": 1}), UnknownJobType, "name"),
    (lambda: enqueue("batch-processing", "t-echo", {"value": 1}), UnknownJobType, "name"),
    (lambda: t.echo.delay(value="three"), JobValidationError, "data.value"),
    (lambda: t.echo.delay(note="no value"), JobValidationError, "data.value"),
    (lambda: t.sleep_job.delay({"when": object()}), JobValidationError, "data.when"),
    (lambda: t.sleep_job.delay([1, 2]), JobValidationError, "data"),
    (lambda: t.echo.apply_async(({"value": 1},), priority=11), JobValidationError, "priority"),
    (lambda: t.echo.apply_async(({"value": 1},), attempts=0), JobValidationError, "attempts"),
    (lambda: t.echo.apply_async(({"value": 1},), backoff={"type": "linear"}),
     JobValidationError, "backoff.type"),
    (lambda: enqueue_many(Q, "t-echo", [{"value": 1}, {"value": "x"}]),
     JobValidationError, "data.value"),
])
def test_bad_input_raises_and_records_nothing(
        r: redis.Redis, call: Callable[[], object], error: type[Exception],
        field: str | None) -> None:
    with pytest.raises(error) as info:
        call()
    if field is not None:
        assert isinstance(info.value, JobValidationError) and info.value.field == field
    assert r.dbsize() == 0, "a rejected enqueue must write nothing"


def test_payload_size_limit(r: redis.Redis) -> None:
    with override_settings(COORDINATOR_MAX_JOB_DATA_SIZE=100):
        with pytest.raises(PayloadTooLarge, match="limit is 100 bytes"):
            t.sleep_job.delay({"blob": "x" * 200})
        t.sleep_job.delay({"blob": "x" * 10})
    assert r.llen(Q) == 1


def test_given_job_id_deduplicates(r: redis.Redis) -> None:
    first = t.echo.apply_async(({"value": 1},), job_id="order-42")
    second = enqueue(Q, "t-echo", {"value": 2}, job_id="order-42")
    assert first.created and not second.created
    assert second.id == "order-42"
    assert get_job(Q, "order-42").data["value"] == 1
    assert len(broker_messages(r)) == 1


def test_celery_task_id_option_is_the_job_id(r: redis.Redis) -> None:
    handle = t.echo.apply_async(({"value": 1},), task_id="celery-style-id")
    assert handle.id == "celery-style-id"


def test_enqueue_many_records_every_job_in_chunks(r: redis.Redis) -> None:
    handles = enqueue_many(Q, "t-echo", [{"value": n} for n in range(1200)], priority=3)
    assert len({h.id for h in handles}) == 1200
    assert r.zcard(keys.state_index(Q, "waiting")) == 1200
    assert len(broker_messages(r, priority=3)) == 1200
    assert as_int(r.hget(keys.stats(Q), "scheduled")) == 1200


def test_option_precedence_through_enqueue(r: redis.Redis) -> None:
    # t-defaults declares attempts=7, priority=4, backoff.delay=10; photo-processing's
    # queue type says exponential with max 300000; the call overrides priority.
    info = get_job(Q, enqueue(Q, "t-defaults", {}, priority=1).id)
    assert info.priority == 1
    assert info.max_attempts == 7
    assert info.options["backoff"] == {"type": "exponential", "delay": 10, "max_delay": 300000}
    assert info.options["remove_on_complete"] == 100  # the queue type's
    plain = get_job(Q, t.sleep_job.delay({}).id)
    assert plain.max_attempts == 1 and plain.priority == 0


def test_queue_type_default_beats_global_default(r: redis.Redis) -> None:
    from queues.models import QueueType

    QueueType.objects.filter(name=Q).update(default_attempts=6, default_priority=5)
    from queues import registry

    registry.invalidate()
    with override_settings(COORDINATOR_DEFAULT_JOB_ATTEMPTS=9):
        info = get_job(Q, t.echo.delay(value=1).id)
    assert (info.max_attempts, info.priority) == (6, 5)


def test_unknown_job_id_raises_job_not_found() -> None:
    from queues.exceptions import JobNotFound

    with pytest.raises(JobNotFound, match="'nope' not found in queue 'photo-processing'"):
        get_job(Q, "nope")


def _record(r: redis.Redis, job_id: str) -> dict[str, str]:
    return text_map(r.hgetall(keys.job(Q, job_id)))


RECORD_FIELDS = {
    "id", "name", "queue", "task", "data", "opts", "priority", "max_attempts", "trace_id",
    "client_id", "task_id", "lock_ms", "max_stalled", "keep_completed", "keep_failed", "gen",
    "created_at", "attempts_made", "progress", "state", "runnable_at",
}


def test_enqueue_many_writes_each_record_and_message_in_full(r: redis.Redis) -> None:
    handles = enqueue_many(Q, "t-echo", [{"value": n} for n in range(3)], priority=2,
                           client_id="c-9")
    messages = list(reversed(broker_messages(r, priority=2)))  # oldest first
    for n, (handle, msg) in enumerate(zip(handles, messages, strict=True)):
        rec = _record(r, handle.id)
        assert set(rec) == RECORD_FIELDS
        assert (rec["id"], rec["name"], rec["queue"], rec["task"], rec["state"]) == (
            handle.id, "t-echo", Q, "photo-processing:t-echo", "waiting")
        assert rec["data"] == json.dumps({"value": n, "note": ""}, separators=(",", ":"))
        assert (rec["gen"], rec["attempts_made"], rec["progress"], rec["priority"]) == (
            "1", "0", "0", "2")
        assert rec["created_at"] == rec["runnable_at"]
        assert (rec["client_id"], rec["max_attempts"], rec["keep_completed"]) == ("c-9", "3", "100")
        assert json.loads(rec["opts"])["client_id"] == "c-9"
        assert rec["task_id"] == msg["headers"]["id"] == msg["properties"]["correlation_id"]
        assert (msg["headers"]["jq_job"], msg["headers"]["jq_trace"]) == (
            handle.id, rec["trace_id"])
    ids = [h.id for h in handles] + [_record(r, h.id)["trace_id"] for h in handles]
    assert len(set(ids)) == 6, "every job has its own job id and trace id"
    assert as_int(r.hget(keys.stats(Q), "scheduled|t-echo")) == 3
    assert r.sismember(keys.known_queues(), Q)


def test_enqueue_many_with_a_delay_keeps_messages_in_the_records(r: redis.Redis) -> None:
    handles = enqueue_many(Q, "t-echo", [{"value": 1}, {"value": 2}], delay_ms=60000,
                           priority=4)
    assert r.llen(f"{Q}\x06\x164") == 0, "delayed jobs are published when promoted"
    for handle in handles:
        rec = _record(r, handle.id)
        assert set(rec) == RECORD_FIELDS | {"msg", "broker_key"}
        assert rec["state"] == "delayed" and rec["broker_key"] == f"{Q}\x06\x164"
        assert int(rec["runnable_at"]) == int(rec["created_at"]) + 60000
        assert r.zscore(keys.state_index(Q, "delayed"), handle.id) == int(rec["runnable_at"])
        msg = json.loads(rec["msg"])
        assert (msg["headers"]["jq_job"], msg["headers"]["id"]) == (handle.id, rec["task_id"])
    assert as_int(r.hget(keys.stats(Q), "scheduled")) == 2


def test_one_script_call_skips_duplicate_ids_and_keeps_message_order(r: redis.Redis) -> None:
    from queues import store

    ids = [f"j{n}" for n in range(2500)] + ["j7", "j2499"]  # past one push of 1,000 jobs
    jobs = [store.NewJob(job_id, "{}", f"tr-{job_id}", f"task-{job_id}", f"msg-{n}")
            for n, job_id in enumerate(ids)]
    batch = store.JobBatch(Q, 0, Q, {"name": "t-echo", "queue": Q, "task": t.echo.name})
    created = store.enqueue(batch, [jobs], now=store.now_ms())  # one chunk: one call
    assert created == [True] * 2500 + [False, False]
    assert r.lrange(Q, 0, -1)[::-1] == [f"msg-{n}".encode() for n in range(2500)]
    assert r.zcard(keys.state_index(Q, "waiting")) == 2500
    assert _record(r, "j7")["trace_id"] == "tr-j7" and _record(r, "j7")["data"] == "{}"
    assert as_int(r.hget(keys.stats(Q), "scheduled|t-echo")) == 2500
