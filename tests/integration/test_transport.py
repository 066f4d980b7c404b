"""The transport's pub/sub fix (``queues.store.transport`` fix 3), on a real Redis restart,
and its one client per pool (fix 4).

A worker reads its fanout (remote control) connection when the event loop
says the socket is readable. After Redis restarts, that read must end in a
connection error that Celery handles by reconnecting the consumer; stock
kombu on redis-py 8 reconnects inside redis-py instead (behind the event
loop's back) and can then block the worker's main thread for good.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis

from queues.store import transport
from tests.conftest import wait_for
from tests.redis_plugin import RedisServer

TRANSPORTS = [
    pytest.param(transport.Transport, id="coordinator-transport"),
    pytest.param(kombu_redis.Transport, id="stock-kombu", marks=pytest.mark.xfail(
        strict=True, raises=AssertionError,
        reason="kombu 5.7.0 / redis-py 8: the pub/sub read reconnects by itself")),
]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()  # this test restarts it; the suite's server stays up
    server.start()
    yield server
    server.stop()


def _listening_channel(url: str, transport_cls: type) -> tuple[Connection, Any]:
    conn = Connection(url, transport=transport_cls,
                      transport_options={"socket_timeout": 5, "retry_on_timeout": True})
    channel: Any = conn.default_channel  # a kombu Redis channel (typed as the base class)
    queue = Queue("jq-test-fanout", Exchange("jq-test-fanout", type="fanout"), channel=channel)
    queue.declare()
    channel.basic_consume(queue.name, no_ack=True, callback=lambda message: None,
                          consumer_tag="jq-test")
    pubsub = channel.subclient
    pubsub.connection = pubsub.connection_pool.get_connection()  # as kombu's poller does
    channel._subscribe()
    sock = channel.subclient.connection._sock
    wait_for(lambda: select.select([sock], [], [], 0)[0], timeout=5)
    channel._receive()  # the subscription's confirmation
    return conn, channel


@pytest.mark.parametrize("transport_cls", TRANSPORTS)
def test_a_pubsub_read_after_a_redis_restart_raises_a_connection_error(
        own_redis: RedisServer, transport_cls: type) -> None:
    conn, channel = _listening_channel(own_redis.url, transport_cls)
    old_sock = channel.subclient.connection._sock
    own_redis.crash_and_restart()
    wait_for(lambda: select.select([old_sock], [], [], 0)[0], timeout=5)  # EOF: readable
    outcome: list[BaseException | bool] = []

    def read() -> None:
        try:
            outcome.append(channel._receive())
        except BaseException as exc:  # the outcome under test
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=3 * transport.LISTEN_READ_TIMEOUT)
    try:
        assert outcome, "the read blocked the event loop"
        [result] = outcome
        assert isinstance(result, channel.connection_errors), result
    finally:
        conn.release()


def test_the_channel_keeps_one_client_per_pool_and_a_new_pool_gets_a_new_one(
        own_redis: RedisServer) -> None:
    """Fix 4: publish, the unacked bookkeeping and ack share one client; after a
    reconnect (a new pool) the channel builds a client on that pool."""
    conn = Connection(own_redis.url, transport=transport.Transport)
    r = redis.Redis.from_url(own_redis.url)
    try:
        channel: Any = conn.default_channel
        queue = Queue("jq-test-one-client", channel=channel)
        queue.declare()
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second and first.connection_pool is channel.pool
        producer = conn.Producer(channel)
        for n in range(3):
            producer.publish({"n": n}, routing_key=queue.name)
        message = queue.get(no_ack=False)
        assert message is not None and message.payload == {"n": 0}
        assert r.hlen("unacked") == 1
        message.ack()
        assert r.hlen("unacked") == 0
        channel._disconnect_pools()
        with channel.conn_or_acquire() as third:
            assert third is not first and third.connection_pool is channel.pool
            assert third.llen(queue.name) == 2
        with channel.conn_or_acquire(first) as given:
            assert given is first  # a client passed in is used as kombu uses it
    finally:
        conn.release()
