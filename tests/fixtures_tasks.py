"""Jobs the tests run; importable by subprocess workers (``JOB_MODULES``)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from queues import store
from queues.exceptions import ValidationError
from queues.jobs import JobContext, job

QUEUE = "photo-processing"


def runs_key(job_id: str) -> str:
    """Where ``count_runs`` jobs count their executions (to find duplicates)."""
    return f"test:runs:{job_id}"


def _count(ctx: JobContext) -> int:
    return int(store.client().incr(runs_key(ctx.job_id)))


class Echo(BaseModel):
    value: int
    note: str = ""


@job(QUEUE, "t-echo", schema=Echo)
def echo(data: Echo, ctx: JobContext) -> dict[str, Any]:
    _count(ctx)
    return {"value": data.value, "attempt": ctx.attempt}


@job(QUEUE, "t-sleep", attempts=1)
def sleep_job(data: dict[str, Any], ctx: JobContext) -> int:
    """Sleeps ``ms`` milliseconds; counts runs; records its start order."""
    store.client().rpush("test:started", str(data.get("tag", ctx.job_id)))
    _count(ctx)
    time.sleep(data.get("ms", 0) / 1000)
    return int(data.get("ms", 0))


@job(QUEUE, "t-report", attempts=1)
def report(data: dict[str, Any], ctx: JobContext) -> str:
    for step in (25, 50, 100):
        ctx.progress(step)
        ctx.log(f"step {step}", level="debug", step=step)
    return "reported"


@job(QUEUE, "t-boom", attempts=1)
def boom(data: dict[str, Any], ctx: JobContext) -> None:
    _count(ctx)
    raise RuntimeError(data.get("message", "boom"))


@job(QUEUE, "t-invalid", attempts=5)
def invalid(data: dict[str, Any], ctx: JobContext) -> None:
    _count(ctx)
    raise ValidationError("bad input in job")


@job(QUEUE, "t-defaults", attempts=7, priority=4, backoff={"delay": 10})
def with_defaults(data: dict[str, Any], ctx: JobContext) -> None:
    """Declares job-level defaults, for the option-precedence tests."""


@job(QUEUE, "t-unserialisable", attempts=1)
def unserialisable(data: dict[str, Any], ctx: JobContext) -> object:
    return object()


@job(QUEUE, "t-flaky", attempts=4, backoff={"type": "fixed", "delay": 50})
def flaky(data: dict[str, Any], ctx: JobContext) -> int:
    """Fails until its ``succeed_on`` attempt."""
    _count(ctx)
    if ctx.attempt < data["succeed_on"]:
        raise ConnectionError(f"transient failure on attempt {ctx.attempt}")
    return ctx.attempt


class DeclaredFatal(Exception):
    pass


@job(QUEUE, "t-declared-fatal", attempts=5, dont_retry=(DeclaredFatal,))
def declared_fatal(data: dict[str, Any], ctx: JobContext) -> None:
    _count(ctx)
    raise DeclaredFatal("never retry me")


@job(QUEUE, "t-cooperative", attempts=1)
def cooperative(data: dict[str, Any], ctx: JobContext) -> str:
    """Loops until cancelled (or ``ms`` pass)."""
    store.client().rpush("test:started", ctx.job_id)
    deadline = time.monotonic() + data.get("ms", 10000) / 1000
    while time.monotonic() < deadline:
        if ctx.cancelled:
            return "stopped"
        time.sleep(0.02)
    return "ran to the end"


RESILIENCE = "resilience"  # created by the tests with a short stalledInterval


@job(RESILIENCE, "t-work", attempts=3, backoff={"type": "fixed", "delay": 100})
def work(data: dict[str, Any], ctx: JobContext) -> int:
    """Sleeps ``ms``; counts every execution to detect duplicates."""
    store.client().rpush("test:started", ctx.job_id)
    _count(ctx)
    time.sleep(data.get("ms", 0) / 1000)
    return int(data.get("ms", 0))


@job(RESILIENCE, "t-ledger", attempts=10, backoff={"type": "fixed", "delay": 200})
def ledger(data: dict[str, Any], ctx: JobContext) -> None:
    """Appends "<job id> <ms>" to the file ``data["ledger"]``: a record of runs kept
    outside Redis, for tests that fail Redis over."""
    with open(data["ledger"], "a", encoding="utf-8") as out:
        out.write(f"{ctx.job_id} {store.now_ms()}\n")


def gathered_key(job_id: str) -> str:
    """Where a ``t-gather`` parent notes what it saw of its children."""
    return f"test:gathered:{job_id}"


@job(RESILIENCE, "t-gather", attempts=1)
def gather(data: dict[str, Any], ctx: JobContext) -> int:
    """A flow's parent: notes how many results its children left, and when it ran."""
    results = ctx.children_results()
    _count(ctx)
    store.client().hset(gathered_key(ctx.job_id), mapping={
        "results": len(results), "sum": sum(int(v) for v in results.values()),
        "failures": len(ctx.children_failures()), "at": store.now_ms()})
    return len(results)


@job(QUEUE, "t-always-fails", attempts=1)
def always_fails(data: dict[str, Any], ctx: JobContext) -> None:
    """Fails every time with a ``LookupError``; payload is echoed into the dead letter."""
    _count(ctx)
    raise LookupError(f"cannot find {data.get('item', 'it')}")


@job(QUEUE, "t-client", attempts=1)
def client_of(data: dict[str, Any], ctx: JobContext) -> str | None:
    """Returns the job's client id as the job sees it (``ctx.client_id``)."""
    return ctx.client_id


class Measure(BaseModel):
    x: float
    label: str = ""


@job(QUEUE, "t-measure", schema=Measure, attempts=1)
def measure(data: Measure, ctx: JobContext) -> float:
    """A schema with a float and a str field: pydantic alone lets NaN and NUL through."""
    return data.x


TIMEOUTS = "timeouts"  # created by the time-limit tests, with a queue-type hard limit


def _overrun(data: dict[str, Any], ctx: JobContext) -> int:
    _count(ctx)
    time.sleep(data.get("ms", 30000) / 1000)
    return int(data.get("ms", 30000))


@job(TIMEOUTS, "t-overrun", attempts=2, backoff={"type": "fixed", "delay": 50})
def overrun(data: dict[str, Any], ctx: JobContext) -> int:
    """Sleeps ``ms`` (default 30 s) under the queue type's time limits."""
    return _overrun(data, ctx)


@job(TIMEOUTS, "t-overrun-short", attempts=1, time_limit_ms=600)
def overrun_short(data: dict[str, Any], ctx: JobContext) -> int:
    """Its declaration's hard limit is below the queue type's."""
    return _overrun(data, ctx)


@job(TIMEOUTS, "t-overrun-long", attempts=1, time_limit=8)
def overrun_long(data: dict[str, Any], ctx: JobContext) -> int:
    """Its declaration's hard limit (Celery's seconds) is above the queue type's."""
    return _overrun(data, ctx)


@job(TIMEOUTS, "t-soft-caught", attempts=1, soft_time_limit_ms=300)
def soft_caught(data: dict[str, Any], ctx: JobContext) -> str:
    """Cleans up when its soft time limit interrupts it."""
    from celery.exceptions import SoftTimeLimitExceeded

    try:
        _overrun(data, ctx)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "ran to the end"


@job(TIMEOUTS, "t-soft-fails", attempts=2, backoff={"type": "fixed", "delay": 50},
     soft_time_limit_ms=300)
def soft_fails(data: dict[str, Any], ctx: JobContext) -> int:
    """Lets its soft time limit end the attempt."""
    return _overrun(data, ctx)


OUTAGE_KEY = "test:outage"  # while it exists, t-needs-upstream fails


@job(QUEUE, "t-needs-upstream", attempts=1)
def needs_upstream(data: dict[str, Any], ctx: JobContext) -> str:
    """Fails while ``OUTAGE_KEY`` exists (an upstream outage), succeeds once it is gone."""
    if store.client().exists(OUTAGE_KEY):
        raise ConnectionError(f"upstream is down (item {data.get('item')})")
    return f"done {data.get('item')}"
