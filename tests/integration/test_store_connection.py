"""The transition scripts' own connection (``queues.store._Script``) against a real Redis:
it follows a server restart, a server that forgot the scripts, a changed URL and a fork
of its process, as a pooled client does."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator

import pytest
import redis
from django.test import override_settings

from queues import store
from queues.jobs import enqueue, get_job
from queues.store import keys
from tests import redis_plugin
from tests.conftest import as_int, wait_for

pytestmark = pytest.mark.django_db
Q = "photo-processing"


def _claim(job_id: str, token: str) -> store.Claim:
    return store.claim(Q, job_id, gen=1, token=token, worker="w@test")


def test_a_job_claims_and_completes_through_the_held_connection(r: redis.Redis) -> None:
    handle = enqueue(Q, "t-echo", {"value": 1})
    assert _claim(handle.job_id, "tok").claimed
    assert store.complete(Q, handle.job_id, token="tok", worker="w@test", result="7")
    info = get_job(Q, handle.job_id)
    assert (info.state, info.result) == ("completed", 7)
    # a token that no longer owns the job records nothing
    assert not store.complete(Q, handle.job_id, token="tok", worker="w@test", result="8")
    assert get_job(Q, handle.job_id).result == 7


def test_a_script_the_server_forgot_is_loaded_again(r: redis.Redis) -> None:
    first = enqueue(Q, "t-echo", {"value": 1})
    r.script_flush()
    second = enqueue(Q, "t-echo", {"value": 2})
    assert _claim(second.job_id, "tok").claimed
    assert get_job(Q, first.job_id).state == "waiting"


def test_the_next_transition_after_a_redis_restart_reconnects() -> None:
    server = redis_plugin.RedisServer()  # restarted here; the suite's server stays up
    server.start()
    try:
        with override_settings(COORDINATOR_REDIS_URL=server.url):
            handle = enqueue(Q, "t-echo", {"value": 1})  # the held connection is open now
            server.restart()  # AOF on: the record survives, the socket does not
            assert _claim(handle.job_id, "tok").claimed
            assert as_int(redis.Redis.from_url(server.url).hget(
                keys.job(Q, handle.job_id), "attempts_made")) == 1
    finally:
        server.stop()


def test_each_thread_holds_its_own_connection_and_closes_it_when_it_ends(
        r: redis.Redis) -> None:
    handles = [enqueue(Q, "t-echo", {"value": n}) for n in range(8)]
    before = len(r.client_list())
    outcomes: list[bool] = []
    claimed, release = threading.Barrier(9), threading.Event()

    def claim_one(job_id: str) -> None:
        outcomes.append(_claim(job_id, f"tok-{job_id}").claimed)
        claimed.wait(10)
        release.wait(10)

    threads = [threading.Thread(target=claim_one, args=(h.job_id,)) for h in handles]
    for thread in threads:
        thread.start()
    claimed.wait(10)
    try:
        assert outcomes == [True] * 8
        assert len(r.client_list()) >= before + 8  # one held connection per thread
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
    gc.collect()  # a finished thread's client, pool and connection go with it
    assert wait_for(lambda: len(r.client_list()) <= before)


def test_a_changed_redis_url_drops_the_held_connection(r: redis.Redis) -> None:
    enqueue(Q, "t-echo", {"value": 1})
    held = store._conn.held
    assert held is not None
    where = r.connection_pool.connection_kwargs
    other = f"{where['host']}:{where['port']}"  # the same server, database 1
    with override_settings(COORDINATOR_REDIS_URL=f"redis://{other}/1"):
        handle = enqueue(Q, "t-echo", {"value": 2})
        assert store._conn.held is not held
        assert redis.Redis.from_url(f"redis://{other}/1").exists(
            keys.job(Q, handle.job_id))
    redis.Redis.from_url(f"redis://{other}/1").flushdb()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connection(r: redis.Redis) -> None:
    enqueue(Q, "t-echo", {"value": 1})
    parent_connection = store._conn.held
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one enqueue, then report whether it reused the socket
        try:
            store.promote(Q)  # a script, no SQL
            reused = store._conn.held is parent_connection
            os.write(write, b"reused" if reused else b"own")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"own"
    os.close(read)
    handle = enqueue(Q, "t-echo", {"value": 3})  # the parent's connection still works
    assert _claim(handle.job_id, "tok").claimed


def _jobs(prefix: str, count: int) -> list[store.NewJob]:
    return [store.NewJob(f"{prefix}{n}", "{}", f"tr-{n}", f"task-{prefix}{n}", f"{prefix}-msg-{n}")
            for n in range(count)]


def test_chunks_are_pipelined_in_order_and_survive_a_script_flush_between_them(
        r: redis.Redis) -> None:
    batch = store.JobBatch(Q, 0, Q, {"name": "t-echo", "queue": Q, "task": "t"})
    built: list[str] = []

    def chunks() -> Iterator[list[store.NewJob]]:
        for number in range(4):
            if number == 2:
                r.script_flush()  # the server forgets the script between two calls
            chunk = _jobs(f"c{number}-", 3)
            built.extend(job.message for job in chunk)
            yield chunk

    created = store.enqueue(batch, chunks(), now=store.now_ms())
    assert created == [True] * 12
    # every message, in the order the chunks were built (LPUSH: the newest first)
    assert r.lrange(Q, 0, -1)[::-1] == [message.encode() for message in built]


def test_a_duplicate_in_a_later_chunk_is_reported_where_it_is(r: redis.Redis) -> None:
    batch = store.JobBatch(Q, 0, Q, {"name": "t-echo", "queue": Q, "task": "t"})
    first, again = _jobs("d", 2), _jobs("d", 3)  # d0 and d1 twice
    created = store.enqueue(batch, [first, again], now=store.now_ms())
    assert created == [True, True, False, False, True]
