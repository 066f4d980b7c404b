"""Repairs of the job store: index entries that disagree with their record, orphan logs.

Run by the ``consistency-check`` and ``cleanup-orphans`` maintenance jobs
(``queues.ops.maintenance``). The transition scripts keep the indexes right; these
catch what an operator's hand or a crash between two versions left behind.
"""

from __future__ import annotations

import redis

from queues.store import backend, client, keys, now_ms
from queues.store.replies import text

# Held jobs ('limited') are left out: their index goes with their group's held set and the
# ring (queues/store/lua/gate.lua), which only the gate's scripts change together.
_INDEXED = ("waiting-children", "waiting", "delayed", "active", "completed", "failed",
            "cancelled", "paused")


def repair_indexes(queue: str) -> dict[str, int]:
    """Make every index entry of ``queue`` agree with its record and index every record.

    Returns counts: ``checked`` entries, ``orphan`` (no record, removed), ``moved`` (put in
    the index of the record's state), ``unindexed`` (records put back into their index).
    """
    cli = client()
    found = {"checked": 0, "orphan": 0, "moved": 0, "unindexed": 0}
    with backend():
        for state in _INDEXED:
            for raw, _score in cli.zscan_iter(keys.state_index(queue, state), count=500):
                outcome = _fix_entry(cli, queue, state, raw.decode())
                found["checked"] += 1
                if outcome != "ok":
                    found[outcome] += 1
        found["unindexed"] = _index_strays(cli, queue)
    return found


def _fix_entry(cli: redis.Redis, queue: str, state: str, job_id: str) -> str:
    """Check one index entry atomically (WATCH); returns ok, orphan or moved."""
    job_key, index = keys.job(queue, job_id), keys.state_index(queue, state)
    with cli.pipeline() as pipe:
        try:
            pipe.watch(job_key, index)
            actual = pipe.hget(job_key, "state")
            if actual is not None and text(actual) == state:
                return "ok"
            pipe.multi()
            pipe.zrem(index, job_id)
            if actual is not None and text(actual) in _INDEXED:
                pipe.zadd(keys.state_index(queue, text(actual)), {job_id: now_ms()},
                          nx=True)
            pipe.execute()
        except redis.WatchError:
            return "ok"  # it moved on while we looked: the transition scripts own it
    return "orphan" if actual is None else "moved"


def _index_strays(cli: redis.Redis, queue: str) -> int:
    """Records missing from their state's index are put back into it."""
    prefix, fixed = f"{keys.queue_base(queue)}job:", 0
    for raw in cli.scan_iter(match=f"{prefix}*", count=1000):
        key = raw.decode()
        if key.endswith(":logs"):
            continue
        job_id = key[len(prefix):]
        state = cli.hget(key, "state")
        if state and text(state) in _INDEXED and cli.zscore(
                keys.state_index(queue, text(state)), job_id) is None:
            # ZADD without INCR answers how many it added, never a score or nil.
            fixed += int(cli.zadd(keys.state_index(queue, text(state)),
                                  {job_id: now_ms()}, nx=True) or 0)
    return fixed


def remove_orphan_logs(queues: list[str]) -> int:
    """Delete log lists whose job record is gone; returns how many."""
    cli, removed = client(), 0
    with backend():
        for queue in queues:
            for raw in cli.scan_iter(match=f"{keys.queue_base(queue)}job:*:logs", count=1000):
                if not cli.exists(raw.decode()[: -len(":logs")]):
                    removed += cli.delete(raw)
    return removed
