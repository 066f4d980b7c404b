"""A queue's own state in Redis: counts per state, the paused flag, parked jobs, its keys.

``queues.manager`` (status, pause, resume, destroy) and ``queues.ops.metrics`` (the scrape)
read and change a queue through here. A job's transitions stay in the scripts of
``queues.store``; this module never moves a job between states.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from queues.store import backend, client, keys
from queues.store.replies import members, text
from queues.store.workers import live_since

STATES = keys.STATES  # every state a job can be in, in the order counts are shown


def state_counts(queue: str, states: Sequence[str] = keys.STATES) -> dict[str, int]:
    """How many jobs of ``queue`` are in each of ``states`` (the size of each index)."""
    with backend():
        pipe = client().pipeline(transaction=False)
        for state in states:
            pipe.zcard(keys.state_index(queue, state))
        return dict(zip(states, pipe.execute(), strict=True))


@dataclass(frozen=True)
class QueueSnapshot:
    counts: dict[str, int]  # every state of ``keys.STATES``
    paused: bool
    live_workers: int


def snapshot(queue: str) -> QueueSnapshot:
    """Counts per state, the paused flag and the live workers of ``queue``, in one round trip."""
    with backend():
        pipe = client().pipeline(transaction=False)
        for state in keys.STATES:
            pipe.zcard(keys.state_index(queue, state))
        pipe.hget(keys.meta(queue), "paused")
        pipe.zcount(keys.queue_workers(queue), live_since(), "+inf")
        *counts, paused, workers = pipe.execute()
    return QueueSnapshot(dict(zip(keys.STATES, counts, strict=True)), paused == b"1",
                         int(workers))


def set_paused(queue: str) -> None:
    """Raise the durable paused flag (resuming clears it in the RELEASE script)."""
    with backend():
        client().hset(keys.meta(queue), "paused", "1")


def parked_ids(queue: str, limit: int) -> list[str]:
    """The ``limit`` oldest jobs parked while ``queue`` was paused, oldest first."""
    with backend():
        return members(client().zrange(keys.state_index(queue, "paused"), 0, limit - 1))


def drop_parked(queue: str, job_id: str) -> None:
    """Remove a parked entry whose record is gone or no longer parked."""
    with backend():
        client().zrem(keys.state_index(queue, "paused"), job_id)


def delete_queue(queue: str, broker_lists: Iterable[str]) -> int:
    """Delete every key of ``queue`` (by its hash tag) and its broker lists; returns how many."""
    cli = client()
    deleted = 0
    with backend():
        batch = list(broker_lists)
        for key in cli.scan_iter(match=f"{keys.queue_base(queue)}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += cli.delete(*batch)
                batch = []
        if batch:
            deleted += cli.delete(*batch)
        cli.srem(keys.known_queues(), queue)
    return deleted


@dataclass(frozen=True)
class QueueFigures:
    """What a metrics scrape reads about one queue."""

    name: str
    stats: dict[str, int]
    counts: dict[str, int]
    paused: bool
    workers: int
    scale_target: int  # -1 when never set
    quarantined_dead_letters: int
    quarantined_messages: int


def read_all(also: Iterable[str], states: Sequence[str]) -> list[QueueFigures]:
    """The figures of every queue Redis knows plus ``also``, sorted by name, in one pipeline."""
    cli = client()
    since = live_since()
    with backend():
        names = sorted({text(name) for name in cli.smembers(keys.known_queues())} | set(also))
        pipe = cli.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(keys.stats(name))
            for state in states:
                pipe.zcard(keys.state_index(name, state))
            pipe.hmget(keys.meta(name), "paused", "scale_target")
            pipe.zcount(keys.queue_workers(name), since, "+inf")
            pipe.llen(keys.dead_letter_quarantine(name))
            pipe.llen(keys.message_quarantine(name))
        replies = pipe.execute()
    step = len(states) + 5  # stats, the counts, meta, workers, the two quarantines
    return [_figures(name, states, replies[i * step:(i + 1) * step])
            for i, name in enumerate(names)]


def _figures(name: str, states: Sequence[str], replies: list[Any]) -> QueueFigures:
    stats, *counts, (paused, target), workers, dead_letters, messages = replies
    return QueueFigures(
        name=name, stats={text(k): int(v) for k, v in stats.items()},
        counts=dict(zip(states, (int(c) for c in counts), strict=True)),
        paused=paused == b"1", workers=int(workers),
        scale_target=int(target) if target is not None else -1,
        quarantined_dead_letters=int(dead_letters), quarantined_messages=int(messages))


def index_page(queue: str, state: str, start: int, count: int, *,
               newest_first: bool) -> tuple[int, list[tuple[str, int]]]:
    """(size, ``count`` (job id, score) pairs from rank ``start``) of one state index.

    One ``ZCARD`` and one ``ZRANGE`` by rank: a page costs the same on a queue of a
    million jobs as on one of ten. Scores are the index's (entered at, or due at).
    """
    key = keys.state_index(queue, state)
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.zcard(key)
        pipe.zrange(key, start, start + count - 1, desc=newest_first, withscores=True)
        size, pairs = pipe.execute()
    return int(size), [(text(member), int(score)) for member, score in pairs]
