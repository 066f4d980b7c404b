"""The job store: job records and state indexes in Redis, changed only by Lua.

Functions here take what they need and return plain values; the job API
(``queues.jobs``) and the task base (``queues.task``) build on them. A Redis
connection error leaves here as ``BackendUnavailable``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from queues import keys, scripts
from queues.conf import settings
from queues.exceptions import BackendUnavailable

STATS_BUCKET_TTL_MS = 2 * 3600 * 1000  # per-minute stats live two hours


def now_ms() -> int:
    return int(time.time() * 1000)


class _Connection(threading.local):
    pid: int = -1
    url: str = ""
    client: redis.Redis
    scripts: dict[str, Any]


_conn = _Connection()


def client() -> redis.Redis:
    """This thread's Redis client (a forked child never reuses its parent's)."""
    url = settings.REDIS_URL
    if _conn.pid != os.getpid() or _conn.url != url:
        _conn.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        _conn.scripts = {}
        _conn.pid, _conn.url = os.getpid(), url
    return _conn.client


def _script(name: str) -> Any:
    cli = client()
    if name not in _conn.scripts:
        _conn.scripts[name] = cli.register_script(getattr(scripts, name))
    return _conn.scripts[name]


@contextlib.contextmanager
def backend() -> Iterator[None]:
    """Translate Redis connection failures into ``BackendUnavailable``."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable(f"Redis is unreachable: {exc}") from exc


def _decode(flat: list[bytes]) -> dict[str, str]:
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


@dataclass(frozen=True)
class NewJob:
    """One job to record: its id, due time (0 = now), message and record fields."""

    job_id: str
    due_ms: int
    broker_key: str
    message: str
    record: dict[str, str]


def enqueue(queue: str, jobs: Sequence[NewJob], *, now: int) -> list[bool]:
    """Record and publish ``jobs`` in one atomic script; True where created."""
    argv: list[Any] = [keys.queue_base(queue), now, queue]
    for job in jobs:
        argv += [job.job_id, job.due_ms, job.broker_key, job.message, json.dumps(job.record)]
    script_keys = [
        keys.state_index(queue, "waiting"), keys.state_index(queue, "delayed"),
        keys.stats(queue), keys.known_queues(),
    ]
    with backend():
        flags = _script("ENQUEUE")(keys=script_keys, args=argv)
    return [bool(flag) for flag in flags]


def claim(queue: str, job_id: str, *, gen: int, token: str) -> tuple[bool, Any]:
    """Move a waiting job to active for ``token``.

    Returns (True, (attempt, max_attempts)) or (False, reason).
    """
    script_keys = [
        keys.job(queue, job_id), keys.state_index(queue, "waiting"),
        keys.state_index(queue, "active"),
    ]
    with backend():
        reply = _script("CLAIM")(keys=script_keys, args=[job_id, gen, token, now_ms()])
    if reply[0] == 1:
        return True, (int(reply[1]), int(reply[2]))
    return False, reply[1].decode()


def finish(queue: str, job_id: str, *, token: str, state: str,
           fields: dict[str, str]) -> dict[str, str] | None:
    """Move an active job owned by ``token`` to ``state`` (completed or failed).

    Returns the final record, or None when ``token`` no longer owns the job.
    """
    now = now_ms()
    script_keys = [
        keys.job(queue, job_id), keys.job_logs(queue, job_id),
        keys.state_index(queue, "active"), keys.state_index(queue, state),
        keys.stats(queue), f"{keys.stats_bucket_prefix(queue)}{now // 60000}",
    ]
    argv: list[Any] = [job_id, token, now, state, keys.queue_base(queue), STATS_BUCKET_TTL_MS]
    for field, value in fields.items():
        argv += [field, value]
    with backend():
        reply = _script("FINISH")(keys=script_keys, args=argv)
    return None if reply == 0 else _decode(reply)


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
