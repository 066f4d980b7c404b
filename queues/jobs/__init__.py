"""The job API: declare jobs with ``@job``, enqueue them, read them back.

::

    @job(queue="photo-processing", name="process-photo", schema=PhotoJob, attempts=5)
    def process_photo(data: PhotoJob, ctx: JobContext) -> dict:
        ctx.progress(50)
        ...

    process_photo.delay(photo_id="p1", ...)                       # tracked, like Celery
    enqueue("photo-processing", "process-photo", {...}, priority=1)
    enqueue_many("photo-processing", "process-photo", [{...}, {...}])
    get_job("photo-processing", handle.id).state

This package is also the room of a job's life, one module per step:
``producer`` (what ``@job`` declares; a call becomes recorded, published jobs),
``messages`` (the Celery messages the enqueue script pushes), ``payload`` (the strict
JSON rules), ``task`` (claim, run, finish in the worker), ``request`` (the worker's
view of a delivery: child lost, hard time limit), ``context`` (``JobContext``),
``retry`` (backoff and what is retryable), ``recovery`` (stalled and lost jobs),
``failures`` (the one exit of a job that failed for good), ``info`` (``JobInfo``,
``JobHandle``: reading a job back).

It imports the store and the shared vocabulary (``queues.conf``, ``exceptions``,
``signals``, ``options``, ``registry``), never ``queues.ops`` or ``queues.http``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, overload

import pydantic
from celery import shared_task

from queues import options, registry, signals, store
from queues.conf import settings
from queues.exceptions import (
    ConfigurationError,
    InvalidJobState,
    JobNotFound,
    JobValidationError,
)
from queues.jobs import failures, producer
from queues.jobs.context import JobContext
from queues.jobs.info import JobHandle, JobInfo, get_job
from queues.jobs.task import JobTask

__all__ = [
    "JobContext",
    "JobHandle",
    "JobInfo",
    "ScheduledJob",
    "cancel_job",
    "change_priority",
    "enqueue",
    "enqueue_many",
    "get_job",
    "job",
    "promote_job",
    "scheduled_jobs",
    "task_name",
]

# Celery options that would retry or delay behind the coordinator's back.
_FORBIDDEN = {
    "autoretry_for", "retry_backoff", "retry_kwargs", "max_retries", "default_retry_delay",
}


def task_name(queue: str, name: str) -> str:
    """The Celery task name of job ``name`` on ``queue`` (what Flower shows)."""
    return f"{queue}:{name}"


def job(
    queue: str,
    name: str | None = None,
    *,
    schema: type[pydantic.BaseModel] | None = None,
    dont_retry: Iterable[type[BaseException]] = (),
    **opts: Any,
) -> Callable[[Callable[..., Any]], JobTask]:
    """Declare a job function ``fn(data, ctx)`` on ``queue``.

    ``opts`` are job-option defaults (``attempts``, ``backoff``, ``priority``,
    ``remove_on_complete``, ``expires``, ...), the time limits of one attempt
    (``time_limit_ms`` / ``soft_time_limit_ms``, or Celery's ``time_limit`` /
    ``soft_time_limit`` in seconds; they override the queue type's), or other
    Celery task options (``acks_late``...).

    Raises:
        ConfigurationError: for Celery retry options (retries are the
            coordinator's), invalid option defaults or time limits.
    """
    job_keys = set(options.JobOptions.model_fields)
    forbidden = _FORBIDDEN & set(opts)
    if forbidden:
        raise ConfigurationError(f"{sorted(forbidden)}: use attempts= and backoff= instead")
    opts = dict(opts)
    limits = _declared_time_limits(opts)  # takes the time-limit options out of opts
    defaults = {k: v for k, v in opts.items() if k in job_keys}
    celery_opts = {k: v for k, v in opts.items() if k not in job_keys}
    celery_opts["job_time_limits"] = limits
    # Celery's own attributes too, so its tooling shows the declared limits.
    for attr, limit in zip(("time_limit", "soft_time_limit"), limits, strict=True):
        if limit is not None:
            celery_opts[attr] = limit

    def decorate(fn: Callable[..., Any]) -> JobTask:
        job_name = name or fn.__name__.replace("_", "-")
        try:
            parsed = options.parse(defaults, where=f"@job {job_name}")
        except JobValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        return shared_task(
            base=JobTask, name=task_name(queue, job_name), job_queue=queue,
            job_name=job_name, schema=schema, job_defaults=parsed,
            dont_retry=tuple(dont_retry), **celery_opts,
        )(fn)

    return decorate


def _declared_time_limits(opts: dict[str, Any]) -> tuple[float | None, float | None]:
    """Pop a declaration's time limits: (hard, soft) in seconds, None where not declared.

    Raises:
        ConfigurationError: a limit given in both units, not a positive
            number, or a soft limit above the hard one.
    """
    found: list[float | None] = []
    for kind in ("time_limit", "soft_time_limit"):
        seconds, millis = opts.pop(kind, None), opts.pop(f"{kind}_ms", None)
        if seconds is not None and millis is not None:
            raise ConfigurationError(f"give {kind} (seconds) or {kind}_ms, not both")
        value = seconds if millis is None else millis
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 < value < float("inf")):
            raise ConfigurationError(f"{kind}{'' if millis is None else '_ms'} must be a "
                                     f"positive number, not {value!r}")
        found.append(None if value is None else value if millis is None else value / 1000)
    hard, soft = found
    if hard is not None and soft is not None and soft > hard:
        raise ConfigurationError("the soft time limit is above the hard one: it would never fire")
    return hard, soft


def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None,
          **kw: Any) -> dict[str, str] | None:
    """Celery router (``task_routes``): a job's messages go to its queue type's queue.

    ``.delay()`` pushes to the right list itself; this covers Celery's own
    publishing paths (``send_task``, ``celery call``).
    """
    if isinstance(task, JobTask):
        return {"queue": task.job_queue}
    return None


def _task(queue: str, name: str) -> producer.JobDeclaration:
    return producer.job_task(task_name(queue, name))


@overload
def enqueue(queue: str, name: str, data: Any, *, on_commit: Literal[False] = False,
            **opts: Any) -> JobHandle: ...
@overload
def enqueue(queue: str, name: str, data: Any, *, on_commit: Literal[True],
            **opts: Any) -> None: ...
@overload
def enqueue(queue: str, name: str, data: Any, *, on_commit: bool,
            **opts: Any) -> JobHandle | None: ...
def enqueue(queue: str, name: str, data: Any, *, on_commit: bool = False,
            **opts: Any) -> JobHandle | None:
    """Enqueue one job by queue and job name.

    ``on_commit=True`` records and publishes it only once the surrounding
    database transaction commits, and not at all if it rolls back (Celery's
    ``delay_on_commit``). The payload and options are checked now; it returns
    ``None``, as the job does not exist yet (give ``job_id`` to know its id).
    Errors at commit time (Redis down, rate limit) raise from the end of the
    ``atomic`` block, after the commit.

    ``dedup={"key": ..., "ttl_ms": ..., "mode": "throttle" | "debounce"}`` returns
    the key's job while the key lives (``created`` False, as for an existing
    ``job_id``); a debounce first gives that delayed job this payload and restarts
    its delay (``queues.options.Dedup``).

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
        UnknownJobType: no ``@job`` declares ``name`` for ``queue``.
        JobValidationError / PayloadTooLarge: bad payload or options.
        InvalidJobState: a debounce's delayed job kept changing (priority changes).
        BackendUnavailable: Redis is unreachable.
    """
    registry.get(queue)
    task = _task(queue, name)
    if on_commit:
        from django.db import transaction

        options.parse(opts, where="call")
        value, _ = producer.encode_payload(task, data, limit=settings.MAX_JOB_DATA_SIZE)
        transaction.on_commit(lambda: producer.submit(task, [value], opts))
        return None
    submitted = producer.submit(task, [data], opts)[0]
    return JobHandle(queue, submitted.job_id, created=submitted.created)


def enqueue_many(queue: str, name: str, items: Iterable[Any], **opts: Any) -> list[JobHandle]:
    """Enqueue many jobs of one type in a few round trips (one Lua call per chunk).

    Every payload is validated before anything is written, so a bad item
    records nothing. Raises what ``enqueue`` raises.
    """
    registry.get(queue)
    submitted = producer.submit(_task(queue, name), list(items), opts)
    return [JobHandle(queue, s.job_id, created=s.created) for s in submitted]


def cancel_job(queue: str, job_id: str, *, actor: str = "system") -> str:
    """Cancel a job: a waiting or delayed job becomes ``cancelled`` and never runs;
    an active job is flagged so its code sees ``ctx.cancelled`` (cooperative).

    Returns ``"cancelled"`` or ``"requested"`` (active job). Audited with
    ``actor`` (``management_action``), once it took effect.

    Raises:
        JobNotFound: no such job.
        InvalidJobState: it already completed, failed or was cancelled.
    """
    ok, detail, failed_parents = store.cancel(queue, job_id)
    if not ok:
        if detail == "missing":
            raise JobNotFound(queue, job_id)
        raise InvalidJobState(f"job {job_id!r} is {detail}; only waiting, delayed or active "
                              "jobs can be cancelled")
    signals.announce(actor, "cancel_job", target_type="job", target_id=job_id, queue=queue,
                     job_id=job_id, outcome=detail)
    # a child of a flow whose parent fails with it ('fail_parent'): dead-letter the parent
    failures.failed_parents(failed_parents)
    return detail


def promote_job(queue: str, job_id: str, *, actor: str = "system") -> None:
    """Run a delayed job now (one waiting for its delay, or for its next attempt's
    backoff): it becomes waiting with the priority it has.

    Audited with ``actor`` (``management_action``), once it took effect.

    Raises:
        JobNotFound: no such job.
        InvalidJobState: the job is not delayed.
    """
    ok, detail = store.promote_job(queue, job_id)
    if not ok:
        if detail == "missing":
            raise JobNotFound(queue, job_id)
        raise InvalidJobState(f"job {job_id!r} is {detail}; only delayed jobs can be promoted")
    signals.announce(actor, "promote_job", target_type="job", target_id=job_id, queue=queue,
                     job_id=job_id)


def change_priority(queue: str, job_id: str, priority: int, *, actor: str = "system") -> None:
    """Give a waiting or delayed job a new priority (0 runs first, 9 last).

    The job gets a new generation and message; its old message becomes a no-op.
    Audited with ``actor`` (``management_action``), once it took effect.

    Raises:
        JobValidationError: priority outside 0..9.
        JobNotFound: no such job.
        InvalidJobState: the job is active, finished or cancelled.
    """
    options.parse({"priority": priority}, where="change_priority")
    for _ in range(5):  # retried only if another change raced this one
        record = store.read_record(queue, job_id)
        if record is None:
            raise JobNotFound(queue, job_id)
        message = producer.next_message(record, priority=priority)
        ok, reason = store.change_priority(queue, job_id, priority=priority, gen=record.gen,
                                           message=message)
        if ok:
            signals.announce(actor, "change_priority", target_type="job", target_id=job_id,
                             queue=queue, job_id=job_id, previous=record.priority,
                             priority=priority)
            return
        if reason != "superseded":
            raise InvalidJobState(f"job {job_id!r} is {reason}; only waiting or delayed jobs "
                                  "can change priority")
    raise InvalidJobState(f"job {job_id!r} kept changing; try again")


@dataclass(frozen=True)
class ScheduledJob:
    """A delayed job and when it is due (seed ``getScheduledJobs``)."""

    id: str
    name: str
    run_at: datetime
    priority: int
    attempts: int


def scheduled_jobs(queue: str, limit: int = 100) -> list[ScheduledJob]:
    """Delayed jobs of ``queue``, soonest first.

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
    """
    registry.get(queue)
    return [ScheduledJob(row.job_id, row.name, datetime.fromtimestamp(row.due_ms / 1000, UTC),
                         row.priority, row.attempts_made)
            for row in store.delayed_jobs(queue, limit)]
