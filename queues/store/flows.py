"""Parent-child flows in Redis: recording a flow, and reading a parent's children.

The transitions are ``lua/enqueue_flow.lua`` (a whole flow in one script) and
``lua/flow.lua`` (a child that ends settles with its parent in the script that ends
it); this module calls the first and reads what both wrote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from queues.store import _script, backend, client, confirm_replicated, keys, now_ms
from queues.store.replies import text


class FlowJob(NamedTuple):
    """One job of a flow as the script records it (parents before their children)."""

    queue: str
    job_id: str
    fields: dict[str, str]  # the record's fields but state, times and the parent's key
    message: str  # its Celery message
    broker_key: str
    children: int
    due_ms: int  # 0: runnable now
    parent: tuple[str, str] | None  # (queue, id)


def record_flow(jobs: Sequence[FlowJob]) -> tuple[str, str] | None:
    """Record and publish a whole flow atomically; ``(queue, id)`` of a job id that
    exists already (then nothing is written), else None."""
    argv: list[Any] = [now_ms()]
    bases = {job.queue: keys.queue_base(job.queue) for job in jobs}
    for job in jobs:
        parent = keys.job(*job.parent) if job.parent else ""
        fields = {**job.fields, "parent": parent} if parent else job.fields  # flow.lua's link
        argv += [bases[job.queue], job.job_id, json.dumps(fields), job.message,
                 job.broker_key, job.children, job.due_ms, parent]
    with backend():
        reply = _script("enqueue_flow")(keys=[keys.known_queues()], args=argv)
    if reply[0] == 1:
        confirm_replicated()
        return None
    base, job_id = text(reply[1]), text(reply[2])
    return next(q for q, b in bases.items() if b == base), job_id


def has_children(queue: str, job_id: str) -> bool:
    with backend():
        return bool(client().exists(f"{keys.job(queue, job_id)}:children"))


def children(queue: str, job_id: str) -> list[tuple[str, str]]:
    """A parent's children as (queue, id), in the order they were given."""
    with backend():
        refs = client().lrange(f"{keys.job(queue, job_id)}:children", 0, -1)
    return [(q, i) for q, _, i in (text(ref).partition("/") for ref in refs)]


def results(queue: str, job_id: str) -> dict[str, Any]:
    """Each completed child's result, by child id."""
    with backend():
        raw = client().hgetall(f"{keys.job(queue, job_id)}:results")
    return {text(k): json.loads(v) for k, v in raw.items()}


def failures(queue: str, job_id: str) -> dict[str, dict[str, str]]:
    """Each failed or cancelled child whose failure the parent ignores, by child id."""
    with backend():
        raw = client().hgetall(f"{keys.job(queue, job_id)}:failures")
    return {text(k): json.loads(v) for k, v in raw.items()}
