"""A queue's flow control in Redis: its limits, the held jobs, and why they wait.

The transitions live in ``lua/gate.lua`` (prepended to every script that makes a
job runnable, starts or ends it); this module writes the limits the scripts read
from the queue's meta hash, pumps the gate for a worker's duty, holds back a job
a claim refused, and reads what the dashboard and the metrics show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from queues.store import _script, backend, client, keys, now_ms
from queues.store.replies import text

# The meta fields gate.lua reads (gate_limits), by Limits attribute.
_FIELDS = {"rate_max": "rate_max", "rate_ms": "rate_ms", "concurrency": "conc",
           "group_concurrency": "group_conc", "group_rate_max": "group_rate_max",
           "group_rate_ms": "group_rate_ms"}
REASONS = ("rate_limited", "concurrency_limited")


@dataclass(frozen=True)
class Limits:
    """A queue's limits as the scripts take them; ``None``: no such limit."""

    rate_max: int | None = None  # at most rate_max starts in any rate_ms
    rate_ms: int | None = None
    concurrency: int | None = None  # jobs waiting or active at once, across all workers
    group_concurrency: int | None = None  # the same, per group
    group_rate_max: int | None = None
    group_rate_ms: int | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, name) is not None for name in _FIELDS)


def write_limits(queue: str, limits: Limits) -> None:
    """Make ``limits`` the queue's: the next transition on any worker applies them.

    Turning every limit off leaves the gate open until the jobs it holds are
    out (the pump sends them without limits), so none is stranded.
    """
    meta = keys.meta(queue)
    values = {field: getattr(limits, name) for name, field in _FIELDS.items()}
    with backend():
        pipe = client().pipeline(transaction=True)
        for field, value in values.items():
            if value is not None:
                pipe.hset(meta, field, value)
        if unset := [field for field, value in values.items() if value is None]:
            pipe.hdel(meta, *unset)
        if limits.any:
            pipe.hset(meta, "gate", "1")
        else:
            pipe.hdel(meta, "gate")
        pipe.execute()


def read_limits(queue: str) -> Limits:
    """The limits the queue's scripts apply now (its meta hash)."""
    with backend():
        raw = client().hmget(keys.meta(queue), list(_FIELDS.values()))
    return Limits(**{name: int(value) if value is not None else None
                     for name, value in zip(_FIELDS, raw, strict=True)})


def pump(queue: str, *, budget: int = 500) -> tuple[int, int]:
    """Dispatch held jobs the limits let out now: (how many, when to pump again or -1).

    Runs whenever jobs are held, even with no limit left (their last way out).
    """
    with backend():
        sent, wake = _script("gate_pump")(keys=[], args=[keys.queue_base(queue), now_ms(),
                                                         budget])
    return int(sent), int(wake)


def has_held(queue: str) -> bool:
    """Whether the queue holds jobs or has limits (the gate duty's filter)."""
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.hget(keys.meta(queue), "gate")
        pipe.llen(keys.gate(queue, "ring"))
        gate, groups = pipe.execute()
    return gate == b"1" or bool(groups)


def hold_back(queue: str, job_id: str, *, gen: int, message: Any) -> bool:
    """Hold a waiting job a claim refused again, with ``message`` (a new generation).

    False when the job moved on meanwhile (nothing written).
    """
    k = keys.of(queue)
    args = [job_id, gen, message.gen, message.broker_key, message.body, k.base]
    with backend():
        return bool(_script("gate_return")(keys=[k.job(job_id), k.waiting], args=args))


def holding_reason(queue: str, group: str | None) -> str:
    """Why a held job of ``group`` waits: ``rate_limited`` or ``concurrency_limited``.

    The queue's own limits first; then the group's, as the last pump found them.
    A job held for its turn in the ring only is held by the queue's concurrency
    when it has one, else by a rate.
    """
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.hmget(keys.gate(queue, "why"), ["*", group or ""])
        pipe.hget(keys.meta(queue), "conc")
        (queue_why, group_why), concurrency = pipe.execute()
    why = queue_why or group_why
    if why is not None:
        return text(why)
    return "concurrency_limited" if concurrency is not None else "rate_limited"


def held_by_reason(queue: str, *, groups: int = 1000) -> dict[str, int]:
    """How many jobs the queue holds, per reason (bounded: the first ``groups`` blocked)."""
    why_key = keys.gate(queue, "why")
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.zcard(keys.state_index(queue, "limited"))
        pipe.hget(why_key, "*")
        pipe.hget(keys.meta(queue), "conc")
        held, queue_why, concurrency = pipe.execute()
        counts = dict.fromkeys(REASONS, 0)
        if not held:
            return counts
        if queue_why is not None:
            counts[text(queue_why)] = held
            return counts
        blocked = [(text(g), text(w)) for g, w in
                   client().hscan_iter(why_key, count=groups)][:groups]
        pipe = client().pipeline(transaction=False)
        for group, _ in blocked:
            pipe.zcard(keys.gate(queue, f"q:{group}"))
        sizes = pipe.execute() if blocked else []
    for (_, why), size in zip(blocked, sizes, strict=True):
        counts[why] = counts.get(why, 0) + int(size)
    rest = max(0, held - sum(counts.values()))
    counts["concurrency_limited" if concurrency is not None else "rate_limited"] += rest
    return counts
