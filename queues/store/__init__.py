"""The job store: job records and state indexes in Redis, changed only by Lua.

Functions here take what they need and return plain values; the job API
(``queues.jobs``) and the task base (``queues.jobs.task``) build on them. A Redis
connection error leaves here as ``BackendUnavailable``.

This package is the only code that names Redis keys (``queues.store.keys``) or calls
Redis about jobs, queues, workers and stats; one module per subject beside this
one: ``queue_state`` (counts, paused flag, a queue's keys, the metrics scrape),
``workers`` (presence, pause flags, pool targets, "live"), ``stats`` (the stats
hashes' vocabulary), ``history`` (hourly roll-ups, health history), ``recurring``
(run counters), ``alerts`` (failure-alert windows), ``upkeep`` (index repair),
``broker`` (the broker lists), ``holding`` (the dead-letter and message holds);
``keys`` (every key name), ``records`` (``JobRecord``), ``scripts`` and ``lua/`` (the
transitions), ``transport`` (the Celery broker transport, kombu's Redis one hardened).
``tests/test_architecture.py`` fails on a module outside that bypasses it.

The room at the bottom of ``queues``: it imports only the shared vocabulary
(``queues.conf``, ``queues.exceptions``), never ``jobs``, ``ops`` or ``http``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry

from queues.conf import settings
from queues.exceptions import BackendUnavailable
from queues.store import keys, scripts
from queues.store.records import FIELDS as _RECORD_FIELDS
from queues.store.records import JobRecord
from queues.store.replies import members, scored, text, text_hash

STATS_BUCKET_TTL_MS = 2 * 3600 * 1000  # per-minute stats live two hours


def now_ms() -> int:
    return int(time.time() * 1000)


class _Connection(threading.local):
    pid: int = -1
    url: Any = ""  # what the client was made for: the URL, and the sentinels when set
    client: redis.Redis
    held: AbstractConnection | None = None  # the scripts' own connection (``_script``)


_conn = _Connection()


def connect(**options: Any) -> redis.Redis:
    """A new Redis client for the job store: ``REDIS_URL``'s server, or with
    ``REDIS_SENTINELS`` the master the sentinels name, followed across a failover
    (redis-py's ``Sentinel.master_for``: each new connection asks the sentinels, and
    one to a master that was demoted fails as a connection error and reconnects).

    ``options`` are the connections' (timeouts, retry).
    """
    if not settings.REDIS_SENTINELS:
        return redis.Redis.from_url(settings.REDIS_URL, **options)
    from redis.sentinel import Sentinel

    target = redis.connection.parse_url(settings.REDIS_URL)  # its password and db
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    if settings.REDIS_SENTINEL_PASSWORD:
        sentinel_options["password"] = settings.REDIS_SENTINEL_PASSWORD
    sentinels = Sentinel(list(settings.REDIS_SENTINELS), sentinel_kwargs=sentinel_options)
    return sentinels.master_for(
        settings.REDIS_SENTINEL_MASTER, db=target.get("db", 0),
        username=target.get("username"), password=target.get("password"), **options)


def client() -> redis.Redis:
    """This thread's Redis client (a forked child never reuses its parent's)."""
    made_for = (settings.REDIS_URL, settings.REDIS_SENTINELS, settings.REDIS_SENTINEL_MASTER,
                settings.REDIS_SENTINEL_PASSWORD)
    if _conn.pid != os.getpid() or _conn.url != made_for:
        if _conn.held is not None and _conn.pid == os.getpid():
            _conn.held.disconnect()  # the URL changed (a test's settings)
        _conn.client = connect(socket_timeout=10, socket_connect_timeout=5)
        _conn.held = None
        _conn.pid, _conn.url = os.getpid(), made_for
    return _conn.client


def ping(timeout_s: float) -> tuple[str, str]:
    """(``"ok"`` or what is wrong, the server's role) of the Redis the job store talks to,
    for probes: wrong when it does not answer one ``ROLE`` within ``timeout_s``, or
    answers as a replica (a demoted master, or ``REDIS_URL`` naming one: it takes no
    writes). The role is ``master``, ``slave``, or ``unknown`` when it did not answer.

    A client of its own that never retries: ``client()`` waits up to 10 s, and
    redis-py retries a timed-out command three times by default.
    """
    probe = connect(socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                    retry=Retry(NoBackoff(), 0))
    try:
        role = text(probe.execute_command("ROLE")[0])
    except redis.TimeoutError:
        return f"Redis did not answer within {timeout_s:g} s", "unknown"
    except redis.RedisError as exc:
        return f"Redis is unreachable: {exc}", "unknown"
    finally:
        probe.close()
    if role != "master":
        return f"Redis answers as a {role}, which takes no writes", role
    return "ok", role


def confirm_replicated() -> None:
    """With ``ENQUEUE_DURABILITY=replica``: return once a replica has every write this
    thread's script connection made (Redis ``WAIT 1``), so an acknowledged job survives
    a failover.

    Raises:
        NotReplicated: no replica confirmed within ``ENQUEUE_REPLICA_TIMEOUT`` ms; the
            jobs are recorded on the primary, and may or may not survive a failover.
    """
    if settings.ENQUEUE_DURABILITY != "replica":
        return
    from queues.exceptions import NotReplicated

    timeout = settings.ENQUEUE_REPLICA_TIMEOUT
    with backend():
        conn = _held_connection()
        conn.send_command("WAIT", 1, timeout)
        confirmed = int(conn.read_response())
    if confirmed < 1:
        raise NotReplicated(timeout)


class _Script:
    """A transition script, run with ``EVALSHA`` on a connection this thread keeps.

    ``redis.Redis.execute_command`` checks a connection out of the pool and back
    in, and runs redis-py's retry, event and metrics hooks around every command:
    about 35 us of Python per call on the 2-core dev machine (an ``INCR`` took
    67 us through the client, 32 us on its connection), and a job runs two of
    these scripts. Here each thread holds one connection of its client's pool
    for the scripts and talks to it directly, checked before each use as the pool
    checks a connection it hands out, with the same retry policy (the
    connection's ``Retry``, reconnecting between tries) and the same parser.
    A connection that fails, or whose read is interrupted (a soft time limit),
    is disconnected by redis-py and reconnects on its next use. A server that
    lost the script (a restart, ``SCRIPT FLUSH``) gets it again, as
    ``register_script`` would.
    """

    def __init__(self, name: str) -> None:
        self.source = scripts.source(name)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def __call__(self, *, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        conn = _held_connection()

        def run() -> Any:
            self._send(conn, keys, args)
            return conn.read_response()

        try:
            return conn.retry.call_with_retry(run, lambda _error: conn.disconnect())
        except redis.exceptions.NoScriptError:
            client().script_load(self.source)
            return conn.retry.call_with_retry(run, lambda _error: conn.disconnect())

    def pipelined(self, calls: Iterable[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Run the script once per (keys, args) of ``calls``, in order; the replies.

        Each call is sent before the reply of the one before is read, so Redis
        runs a call while ``calls`` (a generator) builds the next one. Not
        retried: a connection error leaves here, the calls whose reply was read
        done. Calls that a server which lost the script answered with NOSCRIPT
        run again, in order, once it is loaded (only if another client loaded
        it in between could a later call have run before them).
        """
        conn = _held_connection()
        sent: list[tuple[Sequence[Any], Sequence[Any]]] = []
        replies: list[Any] = []
        lost: list[int] = []

        def read_next() -> None:
            try:
                replies.append(conn.read_response())
            except redis.exceptions.NoScriptError:
                lost.append(len(replies))
                replies.append(None)

        for call in calls:
            self._send(conn, *call)
            sent.append(call)
            if len(sent) - len(replies) > 1:
                read_next()
        while len(replies) < len(sent):
            read_next()
        if lost:
            client().script_load(self.source)
            for index in lost:
                self._send(conn, *sent[index])
                replies[index] = conn.read_response()
        return replies

    def _send(self, conn: AbstractConnection, keys: Sequence[Any], args: Sequence[Any]) -> None:
        conn.send_command("EVALSHA", self.sha, len(keys), *keys, *args)


def _held_connection() -> AbstractConnection:
    """This thread's connection for the scripts, ready for a command."""
    cli = client()
    if _conn.held is None:
        _conn.held = cli.connection_pool.get_connection()
    else:
        _make_ready(_conn.held)
    return _conn.held


def _make_ready(conn: AbstractConnection) -> None:
    """What the pool checks when it hands out a connection: connected, and nothing to
    read (data waiting, or the end of a socket the server closed, means reconnect)."""
    try:
        conn.connect()
        if conn.can_read():
            raise redis.ConnectionError("the held connection has unread data")
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        conn.disconnect()
        conn.connect()


@functools.cache
def _script(name: str) -> _Script:
    return _Script(name)


@contextlib.contextmanager
def backend() -> Iterator[None]:
    """Translate Redis connection failures into ``BackendUnavailable``."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable(f"Redis is unreachable: {exc}") from exc


def _decode(flat: list[bytes]) -> dict[str, str]:
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


class NewJob(NamedTuple):
    """What differs between the jobs of one enqueue call (the rest is in ``JobBatch``)."""

    job_id: str
    data: str  # the payload as JSON
    trace_id: str
    task_id: str
    message: str


@dataclass(frozen=True)
class JobBatch:
    """What every job of one enqueue call shares.

    One call resolves one set of options, so its jobs share the priority (and
    so the broker list) and the due time; ``fields`` are the record fields
    that are the same for all of them (``name``, ``task``, ``opts``, ...).
    """

    queue: str
    due_ms: int  # 0: runnable now
    broker_key: str
    fields: dict[str, str]


def enqueue(batch: JobBatch, chunks: Iterable[Sequence[NewJob]], *, now: int) -> list[bool]:
    """Record and publish each chunk of jobs in one atomic script; True where created.

    The calls are pipelined (``_Script.pipelined``): Redis runs one chunk while
    the caller's generator builds the next. Each chunk is all or nothing; when
    Redis fails half-way, the chunks before are recorded and ``BackendUnavailable``
    says the rest may not be.
    """
    queue = batch.queue
    k = keys.of(queue)
    shared: list[Any] = [k.base, now, queue, batch.due_ms, batch.broker_key, len(batch.fields)]
    for field, value in batch.fields.items():
        shared += (field, value)
    script_keys = [k.waiting, k.delayed, k.stats, keys.known_queues()]

    def calls() -> Iterator[tuple[Sequence[Any], Sequence[Any]]]:
        for chunk in chunks:
            argv = list(shared)
            for job in chunk:
                argv += job  # id, data, trace id, task id, message: the script's order
            yield script_keys, argv

    with backend():
        replies = _script("enqueue").pipelined(calls())
    confirm_replicated()
    return [bool(flag) for flags in replies for flag in flags]


class DedupKey(NamedTuple):
    """One enqueue's de-duplication (``queues.options.Dedup`` as the store takes it)."""

    key: str
    mode: str  # "throttle" or "debounce"
    ttl_ms: int


class Debounce(NamedTuple):
    """The new message of the delayed job a debounce rewrites, of the job's current
    generation ``gen``: the script refuses it once the job has moved on."""

    job_id: str
    gen: int
    message: Any  # a BuiltMessage: .broker_key, .body


DEDUP_CREATED, DEDUP_EXISTING, DEDUP_DEBOUNCED, DEDUP_STALE = 1, 0, 2, -1


def enqueue_dedup(batch: JobBatch, job: NewJob, *, now: int, dedup: DedupKey,
                  debounce: Debounce | None = None) -> tuple[int, str]:
    """Enqueue one job behind a dedup key, atomically: (status, the id that won).

    The status is ``DEDUP_CREATED`` (``job`` recorded, the key names it),
    ``DEDUP_EXISTING`` (the key's job, or ``job``'s id, already existed: nothing
    written), ``DEDUP_DEBOUNCED`` (``debounce`` applied to the key's delayed job) or
    ``DEDUP_STALE``: nothing written, the key names a delayed job (the id) that a
    debounce needs a ``Debounce`` of its current generation for.
    """
    k = keys.of(batch.queue)
    argv: list[Any] = [k.base, now, batch.queue, batch.due_ms, batch.broker_key,
                       dedup.mode, dedup.ttl_ms]
    if debounce is None:
        argv += ("", "", "", "")
    else:
        argv += (debounce.job_id, debounce.gen, debounce.message.broker_key,
                 debounce.message.body)
    argv.append(len(batch.fields))
    for field, value in batch.fields.items():
        argv += (field, value)
    argv += job
    script_keys = [k.waiting, k.delayed, k.stats, keys.known_queues(),
                   keys.dedup(batch.queue, dedup.key)]
    with backend():
        status, job_id = _script("enqueue_dedup")(keys=script_keys, args=argv)
    if status != DEDUP_STALE:
        confirm_replicated()
    return int(status), text(job_id)


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim: ``attempt`` when claimed, else ``reason``."""

    claimed: bool
    attempt: int = 0
    max_attempts: int = 0
    reason: str = ""
    expired_record: dict[str, str] | None = None


def take_rate(client_id: str, count: int, limit: int, *, now: int) -> None:
    """Count ``count`` jobs against the client's budget for this minute (a fixed window).

    Raises:
        RateLimited: the budget would be exceeded; nothing is counted then.
    """
    from queues.exceptions import RateLimited

    key = keys.client_rate(client_id, now // 60000)
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.incrby(key, count)
        pipe.expire(key, 120)
        used, _ = pipe.execute()
        if used > limit:
            client().decrby(key, count)
            raise RateLimited(client_id, limit)


def claim(queue: str, job_id: str, *, gen: int, token: str, worker: str) -> Claim:
    """Move a waiting job to active for ``token`` (or fail it as expired)."""
    now = now_ms()
    k = keys.of(queue)
    script_keys = [k.job(job_id), k.waiting, k.active, k.failed, k.stats, k.meta, k.paused,
                   keys.worker(worker), k.stats_minute(now // 60000)]
    args = [job_id, gen, token, now, settings.MAX_JOB_AGE, STATS_BUCKET_TTL_MS, worker, k.base]
    with backend():
        reply = _script("claim")(keys=script_keys, args=args)
    if reply[0] == 1:
        return Claim(True, attempt=int(reply[1]), max_attempts=int(reply[2]))
    if reply[0] == 2:
        return Claim(False, reason="expired", expired_record=_decode(reply[1:]))
    return Claim(False, reason=reply[1].decode())


def complete(queue: str, job_id: str, *, token: str, worker: str, result: str) -> bool:
    """Move an active job owned by ``token`` to completed with ``result`` (JSON).

    False when ``token`` no longer owns the job (nothing is written then).
    """
    return _finish(queue, job_id, token=token, state="completed", worker=worker,
                   fields={"result": result, "progress": "100"}) == 1


def fail(queue: str, job_id: str, *, token: str, worker: str,
         fields: dict[str, str]) -> dict[str, str] | None:
    """Move an active job owned by ``token`` to failed with ``fields`` (the error).

    Returns the final record (for its dead letter), or None when ``token`` no longer
    owns the job.
    """
    reply = _finish(queue, job_id, token=token, state="failed", worker=worker, fields=fields)
    return None if reply == 0 else _decode(reply)


def _finish(queue: str, job_id: str, *, token: str, state: str, worker: str,
            fields: dict[str, str]) -> Any:
    now = now_ms()
    k = keys.of(queue)
    script_keys = [k.job(job_id), k.job_logs(job_id), k.active, k.in_state(state), k.stats,
                   k.stats_minute(now // 60000), keys.worker(worker)]
    argv: list[Any] = [job_id, token, now, state, k.base, STATS_BUCKET_TTL_MS]
    for field, value in fields.items():
        argv += (field, value)
    with backend():
        return _script("finish")(keys=script_keys, args=argv)


def retry(queue: str, job_id: str, *, token: str, due: int, message: Any,
          error: tuple[str, str]) -> bool:
    """Send an active job back through the delayed set with a new message."""
    script_keys = [
        keys.job(queue, job_id), keys.state_index(queue, "active"),
        keys.state_index(queue, "delayed"), keys.state_index(queue, "waiting"), keys.stats(queue),
    ]
    args = [job_id, token, now_ms(), due, message.gen, message.broker_key, message.body, *error,
            keys.queue_base(queue)]
    with backend():
        return bool(_script("retry")(keys=script_keys, args=args))


def release(queue: str, parked: Sequence[tuple[str, int, Any]]) -> tuple[int, bool]:
    """Re-publish parked (job id, generation, new message) triples of a queue being resumed.

    Returns (released, resumed): the paused flag is cleared once nothing is parked.
    """
    args: list[Any] = [keys.queue_base(queue), now_ms()]
    for job_id, gen, message in parked:
        args += [job_id, gen, message.broker_key, message.body]
    script_keys = [keys.meta(queue), keys.state_index(queue, "paused"),
                   keys.state_index(queue, "waiting")]
    with backend():
        released, resumed = _script("release")(keys=script_keys, args=args)
    return int(released), bool(resumed)


def promote(queue: str, *, limit: int = 1000) -> tuple[int, int]:
    """Move due delayed jobs to waiting: (how many, next due time or -1)."""
    script_keys = [keys.state_index(queue, "delayed"), keys.state_index(queue, "waiting")]
    with backend():
        moved, next_due = _script("promote")(
            keys=script_keys, args=[keys.queue_base(queue), now_ms(), limit])
    return int(moved), int(next_due)


def promote_job(queue: str, job_id: str) -> tuple[bool, str]:
    """Make one delayed job runnable now: (True, "") or (False, its state or "missing")."""
    k = keys.of(queue)
    with backend():
        reply = _script("promote_job")(keys=[k.job(job_id), k.delayed, k.waiting],
                                       args=[job_id, now_ms(), k.base])
    return bool(reply[0]), reply[1].decode() if len(reply) > 1 else ""


def recover(queue: str, job_id: str, *, mode: str, token: str, gen: int,
            message: Any) -> tuple[int, dict[str, str] | None]:
    """Return a stalled or orphaned active job to waiting (1), or fail it (2); 0 if not."""
    now = now_ms()
    k = keys.of(queue)
    script_keys = [k.job(job_id), k.active, k.waiting, k.failed, k.stats,
                   k.stats_minute(now // 60000)]
    args = [job_id, now, mode, token, gen, message.gen, message.broker_key, message.body,
            STATS_BUCKET_TTL_MS, k.base]
    with backend():
        reply = _script("recover")(keys=script_keys, args=args)
    return int(reply[0]), _decode(reply[1:]) if reply[0] == 2 else None


def republish(queue: str, job_id: str, *, gen: int, message: Any) -> bool:
    """Give a still-waiting job of generation ``gen`` a fresh message."""
    args = [job_id, gen, message.gen, message.broker_key, message.body]
    with backend():
        return bool(_script("republish")(
            keys=[keys.job(queue, job_id), keys.state_index(queue, "waiting")],
            args=[*args, now_ms()]))


def stalled_candidates(queue: str, *, limit: int = 100) -> list[str]:
    """Active jobs whose lock deadline has passed."""
    with backend():
        ids = client().zrangebyscore(keys.state_index(queue, "active"), "-inf", now_ms(),
                                     start=0, num=limit)
    return members(ids)


def extend_locks(queue: str, owned: Sequence[tuple[str, str]]) -> int:
    """Renew the locks of (job id, owner token) pairs that are still owned."""
    args: list[Any] = [keys.queue_base(queue), now_ms()]
    for job_id, token in owned:
        args += [job_id, token]
    with backend():
        return int(_script("extend_locks")(keys=[keys.state_index(queue, "active")], args=args))


def cancel(queue: str, job_id: str) -> tuple[bool, str, str]:
    """Cancel a job: (done, ``cancelled`` / ``requested`` or why not, the parents this
    failed as JSON or "": ``queues.jobs.failures.failed_for_good`` reads it)."""
    script_keys = [keys.job(queue, job_id)] + [
        keys.state_index(queue, s) for s in ("waiting", "delayed", "cancelled", "paused")]
    with backend():
        reply = _script("cancel")(keys=script_keys, args=[job_id, now_ms(), keys.queue_base(queue),
                                                          STATS_BUCKET_TTL_MS])
    return bool(reply[0]), reply[1].decode(), reply[2].decode() if len(reply) > 2 else ""


def change_priority(queue: str, job_id: str, *, priority: int, gen: int,
                    message: Any) -> tuple[bool, str]:
    args = [job_id, priority, gen, message.gen, message.broker_key, message.body]
    with backend():
        reply = _script("change_priority")(
            keys=[keys.job(queue, job_id), keys.state_index(queue, "waiting")],
            args=[*args, now_ms(), keys.queue_base(queue)])
    return bool(reply[0]), reply[1].decode() if len(reply) > 1 else ""


def fields(queue: str, job_id: str, *names: str) -> list[str | None]:
    """Selected fields of a job record (None where absent)."""
    with backend():
        values = client().hmget(keys.job(queue, job_id), names)
    return [text(v) if v is not None else None for v in values]


def fields_of_many(queue: str, job_ids: Sequence[str], *names: str) -> list[list[str | None]]:
    """Selected fields of each job record of ``job_ids``, in one pipeline (None where absent)."""
    k = keys.of(queue)
    with backend():
        pipe = client().pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(k.job(job_id), names)
        replies = pipe.execute()
    return [[text(v) if v is not None else None for v in values] for values in replies]


def read_record(queue: str, job_id: str) -> JobRecord | None:
    """The typed record of a job (one round trip), or None when there is no such job."""
    return JobRecord.from_values(fields(queue, job_id, *_RECORD_FIELDS))


def clean(queue: str, state: str, *, older_than_ms: int, limit: int = 1000) -> int:
    """Delete up to ``limit`` records of ``state`` finished more than ``older_than_ms`` ago."""
    args = [keys.queue_base(queue), now_ms() - older_than_ms, limit]
    with backend():
        return int(_script("clean")(keys=[keys.state_index(queue, state)], args=args))


def set_progress(queue: str, job_id: str, progress: int) -> None:
    with backend():
        client().hset(keys.job(queue, job_id), "progress", progress)


def append_log(queue: str, job_id: str, entry: dict[str, Any]) -> None:
    """Append one log entry, keeping the newest ``JOB_LOG_LIMIT``."""
    key = keys.job_logs(queue, job_id)
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.rpush(key, json.dumps(entry))
        pipe.ltrim(key, -settings.JOB_LOG_LIMIT, -1)
        pipe.execute()


def read_job(queue: str, job_id: str) -> tuple[dict[str, str], list[dict[str, Any]]] | None:
    """The raw record and log entries of a job, or None."""
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.hgetall(keys.job(queue, job_id))
        pipe.lrange(keys.job_logs(queue, job_id), 0, -1)
        raw, logs = pipe.execute()
    if not raw:
        return None
    record = {k.decode(): v.decode() for k, v in raw.items()}
    return record, [json.loads(entry) for entry in logs]


# What the SQL database or the broker could not take, held in Redis: in its own module
# (queues/store/holding.py), which builds on the functions above, so imported last.
# What the coordinator reads of kombu's own keys (queues/store/broker.py).
from queues.store.broker import drop_reservations, stale_reservations, unseen_waiting
from queues.store.holding import (
    count_dead_letter,
    keep_pending_dead_letter,
    pending_dead_letter_count,
    pending_dead_letters,
    pending_flush_lock,
    quarantine_dead_letter,
    quarantine_message,
    quarantined_dead_letter_count,
    quarantined_dead_letters,
    quarantined_message_count,
    quarantined_messages,
    release_quarantined_dead_letter,
    trim_pending_dead_letters,
)


class DelayedJob(NamedTuple):
    job_id: str
    due_ms: float
    name: str
    priority: int
    attempts_made: int


def delayed_jobs(queue: str, limit: int) -> list[DelayedJob]:
    """The first ``limit`` delayed jobs of ``queue``, soonest first (records gone are skipped)."""
    cli = client()
    with backend():
        due = scored(cli.zrange(keys.state_index(queue, "delayed"), 0, limit - 1,
                                withscores=True))
        pipe = cli.pipeline(transaction=False)
        for job_id, _score in due:
            pipe.hmget(keys.job(queue, job_id), "name", "priority", "attempts_made")
        rows = pipe.execute()
    return [DelayedJob(job_id, score, row[0].decode(), int(row[1]), int(row[2]))
            for (job_id, score), row in zip(due, rows, strict=True) if row[0] is not None]

