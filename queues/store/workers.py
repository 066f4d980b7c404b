"""Worker data in Redis: each worker's hash, its presence per queue, pause flags, pool targets.

The only code that names these keys. ``workers.presence`` writes heartbeats and reads
statuses through here; ``workers.scaling`` stores pool sizes and queue targets;
``workers.control`` reads the pause flags; the queue figures (``queue_status``, metrics,
health) count live workers with ``live_since``, so every reader means the same by "live",
and find stuck workers with ``stuck_workers``, so they mean the same by "stuck".

**Stuck** (``is_stuck``): a live, unpaused worker with a free process slot that has
taken no job for longer than ``WORKER_STUCK_AFTER`` while one of its unpaused queues
has had a job waiting that long. It heartbeats (its coordinator thread runs) but its
consumer or pool no longer starts jobs: Celery's freeze after a broker reconnect, or
a pool child that hangs. The claim script stamps ``last_claim_ms`` in the hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from queues.conf import settings
from queues.store import backend, client, keys, now_ms
from queues.store.replies import members, scored, text, text_hash

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

# A worker counts as live while its last heartbeat is younger than this many intervals.
LIVE_HEARTBEATS = 3


def live_since(now: int | None = None) -> int:
    """The oldest heartbeat time (ms) of a live worker, at ``now`` (default: the clock)."""
    return (now_ms() if now is None else now) - LIVE_HEARTBEATS * settings.WORKER_HEARTBEAT_INTERVAL


def record_heartbeat(hostname: str, fields: Mapping[FieldT, EncodableT],
                     queues: Iterable[str], *, at: int) -> None:
    """Write the worker's hash and its presence in each of its queues, in one round trip."""
    key = keys.worker(hostname)
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.hset(key, mapping=dict(fields))
        # Kept twice the stale threshold, so a silent worker is reported stale
        # for a while before it disappears.
        pipe.pexpire(key, 2 * settings.WORKER_STALE_AFTER)
        pipe.zadd(keys.workers(), {hostname: at})
        for queue in queues:
            pipe.zadd(keys.queue_workers(queue), {hostname: at})
        pipe.execute()


def remove_worker(hostname: str, queues: Iterable[str]) -> None:
    """Forget a worker that shut down cleanly."""
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.delete(keys.worker(hostname))
        pipe.zrem(keys.workers(), hostname)
        for queue in queues:
            pipe.zrem(keys.queue_workers(queue), hostname)
        pipe.execute()


def read_workers() -> list[dict[str, str]]:
    """The hash of every worker that reported and has not expired, as text."""
    cli = client()
    with backend():
        names = members(cli.zrange(keys.workers(), 0, -1))
        pipe = cli.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(keys.worker(name))
        rows = pipe.execute()
    return [text_hash(raw) for raw in rows if raw]


def read_worker(hostname: str) -> dict[str, str] | None:
    """One worker's hash as text, or None when it never reported or expired."""
    with backend():
        raw = client().hgetall(keys.worker(hostname))
    return text_hash(raw) if raw else None


def set_worker_paused(hostname: str, paused: bool) -> None:
    """Set or clear the worker's own pause flag (its queues' flags are separate)."""
    with backend():
        if paused:
            client().hset(keys.worker(hostname), "paused", "1")
        else:
            client().hdel(keys.worker(hostname), "paused")


def pause_flags(queues: Iterable[str], hostname: str) -> tuple[dict[str, bool], bool]:
    """Each queue's paused flag and the worker's own, in one round trip."""
    names = list(queues)
    with backend():
        pipe = client().pipeline(transaction=False)
        for queue in names:
            pipe.hget(keys.meta(queue), "paused")
        pipe.hget(keys.worker(hostname), "paused")
        *queue_flags, worker_flag = pipe.execute()
    return ({q: flag == b"1" for q, flag in zip(names, queue_flags, strict=True)},
            worker_flag == b"1")


def live_resources(queue: str) -> list[tuple[float, float, float, float]]:
    """``(rss_bytes, cpu_percent, active_jobs, concurrency)`` of each live worker of ``queue``."""
    cli = client()
    with backend():
        hosts = members(cli.zrangebyscore(keys.queue_workers(queue), live_since(), "+inf"))
        pipe = cli.pipeline(transaction=False)
        for host in hosts:
            pipe.hmget(keys.worker(host), "rss_bytes", "cpu_percent", "active_jobs",
                       "concurrency")
        rows: list[list[bytes | None]] = pipe.execute()
    # A hash can expire between the two reads: that host is left out.
    return [(float(rss), float(cpu or 0), float(active or 0), float(slots or 0))
            for rss, cpu, active, slots in rows if rss is not None]


def set_pool_target(hostname: str, size: int) -> None:
    """Remember the pool size scaling gave this worker, for when it restarts."""
    with backend():
        client().hset(keys.worker_targets(), hostname, size)


def pool_target(hostname: str) -> int | None:
    """The pool size scaling last gave this worker, if any."""
    with backend():
        wanted = client().hget(keys.worker_targets(), hostname)
    return int(wanted) if wanted else None


def set_queue_target(queue: str, target: int, *, scaled: bool) -> None:
    """Store the wanted process total of ``queue``; ``scaled`` counts a scaling event."""
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.hset(keys.meta(queue), "scale_target", target)
        if scaled:
            pipe.hincrby(keys.stats(queue), "scaling_events", 1)
        pipe.execute()


def queue_target(queue: str) -> int | None:
    """The wanted process total of ``queue`` (``scale_workers``, the autoscaler), if set."""
    with backend():
        wanted = client().hget(keys.meta(queue), "scale_target")
    return None if wanted is None else int(wanted)


def swap_queue_target(queue: str, target: int) -> int | None:
    """Store the wanted process total of ``queue`` atomically; returns the previous one."""
    with backend():
        pipe = client().pipeline(transaction=True)
        pipe.hget(keys.meta(queue), "scale_target")
        pipe.hset(keys.meta(queue), "scale_target", target)
        previous, _ = pipe.execute()
    return None if previous is None else int(previous)


def forget_stale_workers(queues: Iterable[str], *, stale_before: int) -> tuple[int, int]:
    """Drop presence entries older than ``stale_before`` and pool targets of expired workers.

    Returns ``(presence entries removed, targets removed)``.
    """
    cli, presence, targets = client(), 0, 0
    with backend():
        for queue in queues:
            presence += cli.zremrangebyscore(keys.queue_workers(queue), "-inf", stale_before)
        presence += cli.zremrangebyscore(keys.workers(), "-inf", stale_before)
        for host in cli.hkeys(keys.worker_targets()):
            if not cli.exists(keys.worker(text(host))):
                targets += cli.hdel(keys.worker_targets(), host)
    return presence, targets


@dataclass(frozen=True)
class Consumption:
    """The figures that tell whether a live worker still takes jobs (times: ms since the epoch)."""

    started_at: int
    last_claim: int | None  # None: it never took a job
    free_slots: int  # pool size less the jobs it runs, at its last heartbeat
    oldest_waiting: int | None  # the oldest waiting job of its unpaused queues; None: none


def is_stuck(figures: Consumption, now: int, *, after: int) -> bool:
    """Whether a live, unpaused worker has stopped taking jobs while work waits.

    True when it has a free slot, a job of its queues has waited more than ``after``
    ms, and it has neither taken a job nor started within the last ``after`` ms.
    """
    if figures.free_slots <= 0 or figures.oldest_waiting is None:
        return False
    last_taken = max(figures.started_at, figures.last_claim or 0)
    return now - figures.oldest_waiting > after and now - last_taken > after


def oldest_waiting(queues: Iterable[str]) -> dict[str, int | None]:
    """Each queue's oldest waiting job (ms), None when nothing waits or the queue is paused.

    The lowest score of the waiting index: when the oldest waiting message was pushed
    (a message pushed at the consuming end scores just below the lowest, see
    ``queues.store.scripts``). One ``ZRANGE`` per queue, never a scan.
    """
    names = sorted(set(queues))
    with backend():
        pipe = client().pipeline(transaction=False)
        for queue in names:
            pipe.zrange(keys.state_index(queue, "waiting"), 0, 0, withscores=True)
            pipe.hget(keys.meta(queue), "paused")
        replies = pipe.execute()
    found: dict[str, int | None] = {}
    for i, queue in enumerate(names):
        first, paused = scored(replies[2 * i]), replies[2 * i + 1]
        found[queue] = int(first[0][1]) if first and paused != b"1" else None
    return found


def consumption(row: Mapping[str, str], waiting: Mapping[str, int | None]) -> Consumption:
    """A worker hash's ``Consumption``, given ``oldest_waiting`` of (at least) its queues."""
    oldest = [t for q in json.loads(row["queues"]) if (t := waiting.get(q)) is not None]
    claimed = row.get("last_claim_ms")
    return Consumption(
        started_at=int(row["started_at"]), last_claim=int(claimed) if claimed else None,
        free_slots=int(row["concurrency"]) - int(row["active_jobs"]),
        oldest_waiting=min(oldest) if oldest else None)


def stuck_workers(rows: Iterable[Mapping[str, str]], *, now: int) -> set[str]:
    """The hostnames among ``rows`` (worker hashes) that are live, unpaused and stuck."""
    since = live_since(now)
    candidates = [row for row in rows
                  if int(row["last_heartbeat"]) >= since and row.get("paused") != "1"]
    if not candidates:
        return set()
    waiting = oldest_waiting(q for row in candidates for q in json.loads(row["queues"]))
    after = settings.WORKER_STUCK_AFTER
    return {row["hostname"] for row in candidates
            if is_stuck(consumption(row, waiting), now, after=after)}


def stuck_by_queue() -> dict[str, list[str]]:
    """Queue -> the stuck workers serving it (sorted hostnames); queues with none are absent."""
    rows = read_workers()
    stuck = stuck_workers(rows, now=now_ms())
    found: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda row: row["hostname"]):
        if row["hostname"] in stuck:
            for queue in json.loads(row["queues"]):
                found.setdefault(queue, []).append(row["hostname"])
    return found
