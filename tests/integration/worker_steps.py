"""A test playing the worker on the ``resilience`` queue, without Celery around it.

It pops messages as kombu does (the popping end, the highest priority first) and claims
and finishes them through the store: ``tests/integration/test_limits.py`` and
``test_flows.py`` drive the scripts this way.
"""

from __future__ import annotations

import json

import redis
from celery import current_app

from queues import store
from queues.jobs.messages import broker_keys
from tests import fixtures_tasks as t

R = t.RESILIENCE


def pop(r: redis.Redis) -> tuple[str, int] | None:
    """The next message a worker would take: (job id, generation), or None."""
    for key in broker_keys(current_app, R):
        raw = r.rpop(key)
        if isinstance(raw, bytes):
            headers = json.loads(raw)["headers"]
            return headers["jq_job"], int(headers["jq_gen"])
    return None


def start(r: redis.Redis, token: str = "tok") -> tuple[str, store.Claim]:
    """Pop and claim the next message as a worker would."""
    popped = pop(r)
    assert popped is not None, "no message in the broker"
    job_id, gen = popped
    return job_id, store.claim(R, job_id, gen=gen, token=f"{token}-{job_id}", worker="w@test")


def finish(job_id: str, token: str = "tok") -> None:
    assert store.complete(R, job_id, token=f"{token}-{job_id}", worker="w@test", result="1")


def run_in_turn(r: redis.Redis, count: int) -> list[str]:
    """Start and finish ``count`` jobs one after the other; their ids in that order."""
    order = []
    for _ in range(count):
        job_id, claim = start(r)
        assert claim.claimed
        order.append(job_id)
        finish(job_id)
    return order
