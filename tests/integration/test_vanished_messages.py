"""A job whose message vanished on its way to a worker is found and given a new one.

``BRPOP`` removes a message from its list before kombu records it as
reserved; a worker SIGKILLed in between, or a reply lost with a cut
connection, leaves the job waiting with no message anywhere. Here the test
plays the lost ``BRPOP`` itself (``RPOP`` of the message), then runs the
worker's sweep; a backlog, a reserved message, a priority change and a
release of a paused queue must never be taken for lost.
"""

from __future__ import annotations

import json

import pytest
import redis

from queues import store
from queues.jobs import change_priority, enqueue_many, get_job, recovery
from queues.ops import manager
from queues.store import keys
from tests.conftest import as_int

pytestmark = pytest.mark.django_db
Q = "photo-processing"


def broker_key(priority: int = 0) -> str:
    return Q if priority == 0 else f"{Q}\x06\x16{priority}"


def generations(r: redis.Redis, priority: int = 0) -> list[tuple[str, int]]:
    """(job id, generation) of each message in the list, from the end workers take first."""
    items = [json.loads(raw) for raw in reversed(r.lrange(broker_key(priority), 0, -1))]
    return [(m["headers"]["jq_job"], m["headers"]["jq_gen"]) for m in items]


def sweep_twice() -> int:
    return recovery.recover_vanished_messages([Q]) + recovery.recover_vanished_messages([Q])


@pytest.fixture(autouse=True)
def _no_suspects_from_other_tests() -> None:
    recovery._suspected.clear()


def test_a_message_lost_from_an_emptied_list_is_republished_on_the_second_sweep(
        r: redis.Redis) -> None:
    [job] = enqueue_many(Q, "t-echo", [{"value": 1}])
    assert r.rpop(Q) is not None  # the BRPOP whose reply never reached a worker
    # Younger than the allowed clock skew, a job is not looked at.
    assert sweep_twice() == 0
    r.zincrby(keys.state_index(Q, "waiting"), -10_000, job.id)  # enqueued 10 s ago
    assert recovery.recover_vanished_messages([Q]) == 0  # maybe in flight: only suspected
    assert recovery.recover_vanished_messages([Q]) == 1
    assert generations(r) == [(job.id, 2)]
    assert get_job(Q, job.id).state == "waiting"
    assert sweep_twice() == 0  # the new message is in its list


def test_a_message_lost_ahead_of_a_backlog_is_found_without_waiting_for_the_backlog(
        r: redis.Redis) -> None:
    lost, *backlog = enqueue_many(Q, "t-echo", [{"value": i} for i in range(20)])
    # The lost job was enqueued well before the rest (beyond the allowed clock skew).
    r.zincrby(keys.state_index(Q, "waiting"), -10_000, lost.id)
    assert r.rpop(Q) is not None
    assert sweep_twice() == 1
    assert generations(r) == [(j.id, 1) for j in backlog] + [(lost.id, 2)]


def test_a_backlog_is_never_taken_for_lost(r: redis.Redis) -> None:
    enqueue_many(Q, "t-echo", [{"value": i} for i in range(30)])
    enqueue_many(Q, "t-echo", [{"value": i} for i in range(10)], priority=5)
    before = generations(r), generations(r, 5)
    assert sweep_twice() == 0
    assert (generations(r), generations(r, 5)) == before


def test_a_message_kombu_holds_as_reserved_is_left_to_its_worker(r: redis.Redis) -> None:
    [job] = enqueue_many(Q, "t-echo", [{"value": 1}])
    raw = r.rpop(Q)
    assert isinstance(raw, bytes)
    message = json.loads(raw)
    tag = message["properties"]["delivery_tag"]
    r.hset(keys.KOMBU_UNACKED, tag, json.dumps([message, "", Q]))  # as kombu's QoS.append
    assert sweep_twice() == 0
    assert as_int(r.hget(keys.job(Q, job.id), "gen")) == 1


def test_a_priority_change_and_a_release_keep_the_order_the_sweep_relies_on(
        r: redis.Redis) -> None:
    first, second, third = enqueue_many(Q, "t-echo", [{"value": i} for i in range(3)])
    change_priority(Q, first.id, 3)  # its new message is the newest in the priority-3 list
    assert sweep_twice() == 0
    manager.pause_queue(Q)
    while r.rpop(Q) is not None or r.rpop(broker_key(3)) is not None:
        pass
    # A worker on the paused queue parks what it takes; the test parks the three directly.
    for job in (first, second, third):
        gen = as_int(r.hget(keys.job(Q, job.id), "gen"))
        claim = store.claim(Q, job.id, gen=gen, token="t", worker="test-worker@host")
        assert claim.reason == "parked"
    manager.resume_queue(Q)
    assert sweep_twice() == 0
    assert {j for j, _gen in generations(r) + generations(r, 3)} == {
        first.id, second.id, third.id}


@pytest.mark.parametrize("item", [b"\xff\xfe not utf-8", b"not json", b"[1, 2]",
                                  b'{"headers": "a string"}',
                                  b'{"headers": {"jq_job": "x", "jq_gen": "NaN"}}'])
def test_a_malformed_item_at_the_popping_end_says_nothing_and_breaks_nothing(
        r: redis.Redis, item: bytes) -> None:
    lost, *_rest = enqueue_many(Q, "t-echo", [{"value": i} for i in range(3)])
    r.zincrby(keys.state_index(Q, "waiting"), -10_000, lost.id)
    assert r.rpop(Q) is not None
    r.rpush(Q, item)  # what a worker will quarantine when it gets there
    # Behind an item that is not one of ours, nothing can be told about the list: no republish.
    assert sweep_twice() == 0
    assert as_int(r.hget(keys.job(Q, lost.id), "gen")) == 1
    assert r.rpop(Q) == item
    assert sweep_twice() == 1  # once the item is gone, the lost job is found
