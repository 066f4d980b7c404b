"""What the coordinator reads of kombu's own keys: the broker lists and the unacked hash.

kombu writes both. The coordinator reads them to find messages that are
nowhere a worker will ever take them from, and drops a reservation once it
has superseded the job's message; it never pushes or pops here (the job
scripts push, kombu pops).

A job's message can vanish between Redis and a worker: ``BRPOP`` removes it
from the list, and kombu records it in ``unacked`` only once the reply has
reached the worker. A worker SIGKILLed in between, or a reply lost with a cut
connection, leaves the job ``waiting`` with no message anywhere.
``unseen_waiting`` finds such jobs without scanning a list: every script that
pushes a message sets the job's score in the waiting index so that, per
broker list, the scores rise from the end kombu pops to the end producers
push (``queues.store.scripts``). A waiting job older than the job at the popping end
of its list has left the list; unless kombu holds it as reserved, it is in
flight to a worker (milliseconds) or gone. The caller confirms a suspect on
its next sweep before publishing a new generation, which makes any late copy
of the old message a no-op at claim.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from queues.store import backend, client, keys, members, now_ms, scored, text

# Scores are the caller's clock; hosts may disagree by this much.
CLOCK_SKEW_MS = 2000


def _headers(item: bytes | str | None) -> tuple[dict[str, Any], str] | None:
    """A broker or unacked item's headers and routing key, ``None`` if it is not a message."""
    if item is None:
        return None
    try:
        decoded = json.loads(item)
        message, routing_key = (decoded[0], decoded[2]) if isinstance(decoded, list) else (
            decoded, decoded["properties"]["delivery_info"]["routing_key"])
        headers = message.get("headers") or {}
        return (headers, routing_key) if isinstance(headers, dict) else None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None  # not a message of ours; kombu's own restore deals with it


def _job_gen(headers: dict[str, Any]) -> tuple[str, int] | None:
    job_id, gen = headers.get("jq_job"), headers.get("jq_gen")
    try:
        return (job_id, int(gen)) if isinstance(job_id, str) and gen is not None else None
    except (TypeError, ValueError):
        return None


def stale_reservations(older_than_s: float, *, limit: int = 200) -> list[dict[str, Any]]:
    """Messages kombu has handed to a worker more than ``older_than_s`` ago and not acked.

    Reads kombu's own ``unacked`` hash and ``unacked_index`` sorted set; each
    item is the message's headers plus its routing key.
    """
    cli = client()
    with backend():
        tags = cli.zrangebyscore(keys.KOMBU_UNACKED_INDEX, "-inf", time.time() - older_than_s,
                                 start=0, num=limit)
        raw = cli.hmget(keys.KOMBU_UNACKED, members(tags)) if tags else []
    found = []
    for item in raw:
        if (parsed := _headers(item)) is not None:
            headers, routing_key = parsed
            found.append({**headers, "routing_key": routing_key})
    return found


def _reserved(queue: str) -> dict[str, tuple[str, int]]:
    """kombu's reservations of ``queue``'s messages: delivery tag -> (job id, generation).

    The hash holds one entry per message handed to a worker and not yet
    acked (with prefetch off, about one per busy pool process), so reading it
    whole is cheap.
    """
    with backend():
        entries = client().hgetall(keys.KOMBU_UNACKED)
    found = {}
    for tag, item in entries.items():
        parsed = _headers(item)
        if parsed is not None and parsed[1] == queue and (job := _job_gen(parsed[0])):
            found[text(tag)] = job
    return found


def drop_reservations(queue: str, job_id: str, *, up_to_gen: int) -> int:
    """Forget kombu's unacked copies of a job's messages of generation ``up_to_gen`` or older.

    Called once the coordinator has recovered the job with a newer message: the
    dead worker's reservation would otherwise be redelivered (as a no-op) only
    after ``visibility_timeout``. Recovery is rare.
    """
    stale = [tag for tag, (held, gen) in _reserved(queue).items()
             if held == job_id and gen <= up_to_gen]
    if stale:
        with backend():
            pipe = client().pipeline(transaction=False)
            pipe.hdel(keys.KOMBU_UNACKED, *stale)
            pipe.zrem(keys.KOMBU_UNACKED_INDEX, *stale)
            pipe.execute()
    return len(stale)


def _bounds(queue: str, broker_keys: Sequence[str]) -> list[float | None]:
    """Per priority, the waiting score below which a job's message has left its list.

    ``None`` where the popping end holds a message that says nothing: one
    superseded by a newer generation, or not one of the coordinator's.
    """
    cli = client()
    pipe = cli.pipeline(transaction=False)
    for key in broker_keys:
        pipe.lindex(key, -1)
    read_at = now_ms()
    tails = pipe.execute()
    bounds: list[float | None] = [float(read_at - CLOCK_SKEW_MS)] * len(broker_keys)  # empty
    pipe = cli.pipeline(transaction=False)
    tail_jobs: list[tuple[int, int]] = []
    for priority, item in enumerate(tails):
        if item is None:
            continue
        parsed = _headers(item)
        job = _job_gen(parsed[0]) if parsed is not None else None
        if job is None:  # a worker will quarantine it
            bounds[priority] = None
            continue
        tail_jobs.append((priority, job[1]))
        pipe.hmget(keys.job(queue, job[0]), "state", "gen")
        pipe.zscore(keys.state_index(queue, "waiting"), job[0])
    replies = pipe.execute()
    for i, (priority, gen) in enumerate(tail_jobs):
        (state, current), score = replies[2 * i], replies[2 * i + 1]
        fresh = state == b"waiting" and current == str(gen).encode() and score is not None
        bounds[priority] = float(score) - CLOCK_SKEW_MS if fresh else None
    return bounds


def unseen_waiting(queue: str, broker_keys: Sequence[str], *,
                   limit: int = 500) -> list[tuple[str, int]]:
    """Waiting jobs of ``queue`` whose message is in no broker list and not reserved.

    ``broker_keys[p]`` is the list kombu reads for priority ``p``. Returns
    (job id, generation) pairs; each is either in flight to a worker right now
    or lost, so a caller acts only on a pair it sees on two sweeps. At most
    ``limit`` of the oldest waiting jobs are looked at per call.
    """
    cli = client()
    with backend():
        bounds = _bounds(queue, broker_keys)
        known = [b for b in bounds if b is not None]
        if not known:
            return []
        # Read after the bounds: a job below them then has certainly left its list.
        below = scored(cli.zrangebyscore(keys.state_index(queue, "waiting"), "-inf",
                                         f"({max(known)}", start=0, num=limit, withscores=True))
        pipe = cli.pipeline(transaction=False)
        for member, _score in below:
            pipe.hmget(keys.job(queue, member), "state", "gen", "priority")
        records = pipe.execute() if below else []
    suspects = []
    for (member, score), (state, gen, priority) in zip(below, records, strict=True):
        if state == b"waiting" and gen is not None and priority is not None:
            bound = bounds[int(priority)] if int(priority) < len(bounds) else None
            if bound is not None and score < bound:
                suspects.append((member, int(gen)))
    if not suspects:
        return []
    reserved = set(_reserved(queue).values())
    return [job for job in suspects if job not in reserved]


def reserved_count() -> int:
    """How many messages kombu holds as delivered and not yet acked (its ``unacked`` hash)."""
    with backend():
        return int(client().hlen(keys.KOMBU_UNACKED))


def next_to_run(lists: Sequence[str], start: int, count: int
                ) -> tuple[int, list[tuple[str, int, int]]]:
    """(messages in ``lists``, ``count`` (job id, generation, priority) of them from
    position ``start``) in the order workers take them.

    ``lists`` are a queue's broker lists by priority, 0 first: kombu empties a
    lower level before it looks at a higher one, and pops each list from its right
    end (the oldest message). One ``LLEN`` per list, then one ``LRANGE`` per list the
    page touches. Items that are not messages of a job are left out.
    """
    cli = client()
    with backend():
        pipe = cli.pipeline(transaction=False)
        for key in lists:
            pipe.llen(key)
        lengths = [int(n) for n in pipe.execute()]
        wanted: list[tuple[int, str, int, int]] = []  # priority, key, first, last (from right)
        skip, left = start, count
        for priority, (key, length) in enumerate(zip(lists, lengths, strict=True)):
            if left <= 0:
                break
            if skip >= length:
                skip -= length
                continue
            take = min(length - skip, left)
            wanted.append((priority, key, skip, skip + take - 1))
            skip, left = 0, left - take
        pipe = cli.pipeline(transaction=False)
        for _priority, key, first, last in wanted:
            pipe.lrange(key, -(last + 1), -(first + 1))
        pages = pipe.execute()
    found: list[tuple[str, int, int]] = []
    for (priority, *_), items in zip(wanted, pages, strict=True):
        for item in reversed(items):  # the right end runs first
            parsed = _headers(item)
            job = _job_gen(parsed[0]) if parsed else None
            if job is not None:
                found.append((job[0], job[1], priority))
    return sum(lengths), found
