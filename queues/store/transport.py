"""The coordinator's broker transport: kombu's Redis transport with four fixes.

Selected by ``CELERY_BROKER_TRANSPORT = "queues.store.transport:Transport"``; the
broker URL stays ``redis://``. With Redis Sentinel, ``SentinelTransport`` applies the
same fixes to kombu's Sentinel channel. Everything not named here is kombu's own.

1. **A lost connection must not kill the worker.** With ``acks_late`` and a
   worker that has one pool slot busy and one free, a Redis restart runs, in
   kombu 5.7.0: ``Consumer.on_connection_error_after_connected`` →
   ``connection.collect()`` → ``Channel.close`` stops half-way, because its
   ``_brpop_read`` of the dead connection raises → ``_do_close_transport``
   sets ``transport.client = None`` → the next close reaches
   ``QoS.restore_unacked`` → ``_connparams`` reads ``conninfo.hostname`` on
   ``None``. ``AttributeError`` is not a connection error, so Celery's
   ``ignore_errors`` lets it through and the worker exits ("Unrecoverable
   error"). The same family: celery/kombu#582, #659, #970. Here ``close``
   finishes when that read fails, and a channel whose connection is gone
   raises a *connection* error, which Celery handles by reconnecting.
   Unacked messages are restored if Redis answers, or stay in kombu's
   ``unacked`` hash, where the coordinator's stall sweep republishes them.
2. **A fetched item that is not a message must not kill the worker.** kombu
   decodes what ``BRPOP`` returns without a guard (non-UTF-8 bytes, non-JSON,
   a JSON list, a string for ``headers``, a body that is not base64 each end
   the worker). Here every item is checked first, and whatever kombu or
   Celery still cannot turn into a task is caught at delivery; such an item
   is moved to its queue's message quarantine with the reason
   (``queues.store.quarantine_message``) and the worker goes on.

3. **A lost pub/sub connection must reach kombu, and a read must not block.**
   kombu reads the fanout (remote control) connection with redis-py's
   blocking ``PubSub.parse_response()`` when the event loop says it is
   readable. On a connection error redis-py 8 reconnects by itself, behind
   kombu's back (the event loop still watches the old socket), and then
   waits for a reply on the new socket with no timeout: the worker's main
   thread, and with it all consuming, can stop for good after a Redis
   restart while the worker still heartbeats. Here the pub/sub client reads
   at most ``LISTEN_READ_TIMEOUT`` seconds and never reconnects itself; the
   connection error goes to Celery, which reconnects the consumer as for a
   lost ``BRPOP``.

4. **One Redis client per pool, not one per command.** kombu's
   ``conn_or_acquire`` builds a new ``redis.Redis`` each time it is called
   without a client: twice per message (the ``unacked`` bookkeeping on
   delivery and on ack) and once per publish. redis-py copies its table of
   ~170 response callbacks into every new client, which the profile in
   ``bench/README.md`` shows as a fifth of a solo worker's time per job. Here
   the channel keeps one client per connection pool (a new pool, after a
   reconnect, gets a new client); redis-py clients are thread-safe, each
   command takes a connection from the pool as before.

``tests/e2e/test_broker_faults.py`` and ``tests/integration/test_transport.py``
fail on stock kombu and pass here, so an upgrade that fixes kombu can drop a
patch knowingly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kombu.serialization import prepare_accept_content
from kombu.transport import redis as kombu_redis
from kombu.utils.objects import cached_property

from queues import store
from queues.conf import settings
from queues.exceptions import BackendUnavailable

logger = logging.getLogger("queues.store.transport")

# A message larger than this is not read into a task: the payload limit, twice
# (base64 and JSON escaping), plus room for the envelope.
ENVELOPE_ALLOWANCE = 64 * 1024
# How much of a quarantined item is kept for a human to read.
KEPT_BYTES = 64 * 1024


# Seconds a pub/sub read may wait once the event loop found its socket readable.
LISTEN_READ_TIMEOUT = 5.0


class _EventLoopReads:
    """Fix 3, mixed into the class of kombu's pub/sub client (``redis.client.PubSub``)."""

    def parse_response(self, block: bool = True, timeout: float = 0) -> Any:
        if block:  # kombu's call: only made when the socket is readable, so bound it
            block, timeout = False, LISTEN_READ_TIMEOUT
        return super().parse_response(block=block, timeout=timeout)  # type: ignore[misc]

    def _execute(self, conn: Any, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # No reconnect-and-retry of redis-py's own: the error reaches kombu and Celery.
        return command(*args, **kwargs)


_PUBSUB_CLASSES: dict[type, type] = {}


def _event_loop_pubsub(base: type) -> type:
    if base not in _PUBSUB_CLASSES:
        _PUBSUB_CLASSES[base] = type(f"EventLoop{base.__name__}", (_EventLoopReads, base), {})
    return _PUBSUB_CLASSES[base]


def max_message_bytes() -> int:
    return 2 * settings.MAX_JOB_DATA_SIZE + ENVELOPE_ALLOWANCE


def check_item(raw: bytes, *, max_bytes: int,
               accept: set[str]) -> tuple[dict[str, Any] | None, str]:
    """The envelope kombu expects, or ``None`` and why ``raw`` is not one."""
    if len(raw) > max_bytes:
        return None, f"message of {len(raw)} bytes exceeds the limit of {max_bytes}"
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(payload, dict):
        return None, f"not a message envelope: a JSON {type(payload).__name__}"
    return payload, _envelope_problem(payload, accept)


def _envelope_problem(payload: dict[str, Any], accept: set[str]) -> str:
    properties, headers = payload.get("properties"), payload.get("headers", {})
    if not isinstance(properties, dict) or not isinstance(properties.get("delivery_tag"), str):
        return "no properties with a delivery_tag"
    if not isinstance(properties.get("delivery_info", {}), dict):
        return "delivery_info is not an object"
    if not isinstance(headers, dict):
        return f"headers are a {type(headers).__name__}, not an object"
    if not isinstance(payload.get("body", ""), str):
        return "body is not a string"
    if payload.get("content-type") not in accept:
        return f"content type {payload.get('content-type')!r} is not accepted"
    return ""


class Channel(kombu_redis.Channel):
    @cached_property
    def _accept(self) -> set[str]:
        from django.conf import settings as django_settings

        return set(prepare_accept_content(django_settings.CELERY_ACCEPT_CONTENT))

    @cached_property
    def _broker_down(self) -> tuple[type[BaseException], ...]:
        # kombu counts KeyError as a connection error; raised while delivering, it is
        # a message Celery cannot read (a missing header), not a lost broker.
        return tuple(e for e in self.connection_errors if not issubclass(e, KeyError))

    @cached_property
    def subclient(self) -> Any:
        # Fix 3: kombu's pub/sub client (prefixed or not), with bounded reads.
        pubsub = self._create_client(asynchronous=True).pubsub()
        pubsub.__class__ = _event_loop_pubsub(type(pubsub))
        return pubsub

    def close(self) -> None:
        # Fix 1: a BRPOP whose connection died must not stop the close half-way.
        if self._in_poll:
            try:
                self._brpop_read()
            except (kombu_redis.Empty, *self.connection_errors):
                pass
        super().close()

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        # Fix 4: one synchronous client per connection pool.
        if client:
            yield client
            return
        pool, cached = self.pool, self.__dict__.get("_sync_client")
        if cached is None or cached.connection_pool is not pool:
            cached = self.__dict__["_sync_client"] = self._create_client()
        yield cached

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        # Fix 1: after the transport was closed there is nothing to connect to;
        # say so as a connection error (Celery reconnects), not AttributeError.
        if self.connection.client is None:
            raise kombu_redis.get_redis_ConnectionError()("the broker connection is closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params

    def _brpop_read(self, **options: Any) -> bool:
        # kombu's own, with the item checked before it is delivered (fix 2).
        try:
            try:
                reply = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next iteration reconnects
                raise
            if not reply:
                raise kombu_redis.Empty()
            dest, item = reply
            queue = kombu_redis.bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            self._deliver_checked(item, queue)
            return True
        finally:
            # kombu's class default is False, but it holds the polled connection or None.
            self._in_poll = None  # type: ignore[assignment]
            self._flush_brpop_reauth()

    # kombu's Redis channel drops the base class's timeout argument too.
    def _get(self, queue: str) -> dict[str, Any]:  # type: ignore[override]
        # The synchronous path (basic_get, drain without an event loop), checked too.
        with self.conn_or_acquire() as client:
            for pri in self.priority_steps:
                while item := client.rpop(self._q_for_pri(queue, pri)):
                    payload, problem = check_item(item, max_bytes=max_message_bytes(),
                                                  accept=self._accept)
                    if payload is not None and not problem:
                        self._maybe_update_queues_expire(client, queue)
                        return payload
                    self._quarantine(queue, item, problem)
            self._maybe_update_queues_expire(client, queue)
            raise kombu_redis.Empty()

    def _deliver_checked(self, item: bytes, queue: str) -> None:
        payload, problem = check_item(item, max_bytes=max_message_bytes(), accept=self._accept)
        if payload is None or problem:
            self._quarantine(queue, item, problem)
            return
        try:
            self.connection._deliver(payload, queue)
        except self._broker_down:
            raise
        except Exception as exc:  # whatever kombu or Celery cannot make a task of
            self._forget(payload)
            self._quarantine(queue, item, f"{type(exc).__name__}: {exc}")

    def _forget(self, payload: dict[str, Any]) -> None:
        """Drop a refused message from kombu's unacked bookkeeping, if it got there."""
        tag = payload["properties"]["delivery_tag"]
        if tag in self.qos._delivered:
            self.qos.ack(tag)

    def _quarantine(self, queue: str, item: bytes, reason: str) -> None:
        entry: dict[str, Any] = {
            "queue": queue, "reason": reason, "received_at": store.now_ms(),
            "size": len(item), "truncated": len(item) > KEPT_BYTES,
            "raw": item[:KEPT_BYTES].decode("utf-8", errors="backslashreplace")}
        try:
            held = store.quarantine_message(queue, json.dumps(entry))
        except BackendUnavailable as exc:
            logger.error("a malformed message on %s could not be quarantined and is lost (%s): %s",
                         queue, reason, entry["raw"][:500])
            raise kombu_redis.get_redis_ConnectionError()(str(exc)) from exc
        logger.error("malformed message on queue %s moved to its quarantine (%d there): %s",
                     queue, held, reason)


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The fixes above on kombu's Sentinel channel: the master comes from the sentinels
    (``master_name``; one ``sentinel://`` URL per sentinel), and a connection to a master
    that was demoted fails as a connection error, so Celery reconnects to the new one."""


class SentinelTransport(Transport, kombu_redis.SentinelTransport):
    """Selected when ``REDIS_SENTINELS`` is set (``coordinator_project.settings``);
    kombu's default port for it, 26379, and the channel above."""

    Channel = SentinelChannel
