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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic
from celery import current_app, shared_task

from queues import keys, options, producer, registry, store
from queues.exceptions import (
    ConfigurationError,
    InvalidJobState,
    JobNotFound,
    JobValidationError,
    UnknownJobType,
)
from queues.records import JobHandle, JobInfo, get_job
from queues.task import JobTask

__all__ = [
    "JobHandle",
    "JobInfo",
    "ScheduledJob",
    "cancel_job",
    "change_priority",
    "enqueue",
    "enqueue_many",
    "get_job",
    "job",
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
    ``remove_on_complete``, ...) or Celery task options (``time_limit``,
    ``soft_time_limit``, ``acks_late``...).

    Raises:
        ConfigurationError: for Celery retry options (retries are the
            coordinator's) or invalid option defaults.
    """
    job_keys = set(options.JobOptions.model_fields)
    forbidden = _FORBIDDEN & set(opts)
    if forbidden:
        raise ConfigurationError(f"{sorted(forbidden)}: use attempts= and backoff= instead")
    defaults = {k: v for k, v in opts.items() if k in job_keys}
    celery_opts = {k: v for k, v in opts.items() if k not in job_keys}

    def decorate(fn: Callable[..., Any]) -> JobTask:
        job_name = name or fn.__name__.replace("_", "-")
        try:
            parsed = options.parse(defaults, where=f"@job {job_name}")
        except JobValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        return shared_task(  # type: ignore[no-any-return]
            base=JobTask, name=task_name(queue, job_name), job_queue=queue,
            job_name=job_name, schema=schema, job_defaults=parsed,
            dont_retry=tuple(dont_retry), **celery_opts,
        )(fn)

    return decorate


def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None,
          **kw: Any) -> dict[str, str] | None:
    """Celery router (``task_routes``): a job's messages go to its queue type's queue.

    ``.delay()`` pushes to the right list itself; this covers Celery's own
    publishing paths (``send_task``, ``celery call``).
    """
    if isinstance(task, JobTask):
        return {"queue": task.job_queue}
    return None


def _task(queue: str, name: str) -> JobTask:
    task = current_app.tasks.get(task_name(queue, name))
    if not isinstance(task, JobTask):
        raise UnknownJobType(queue, name)
    return task


def enqueue(queue: str, name: str, data: Any, **opts: Any) -> JobHandle:
    """Enqueue one job by queue and job name.

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
        UnknownJobType: no ``@job`` declares ``name`` for ``queue``.
        JobValidationError / PayloadTooLarge: bad payload or options.
        BackendUnavailable: Redis is unreachable.
    """
    registry.get(queue)
    submitted = producer.submit(_task(queue, name), [data], opts)[0]
    return JobHandle(queue, submitted.job_id, created=submitted.created)


def enqueue_many(queue: str, name: str, items: Iterable[Any], **opts: Any) -> list[JobHandle]:
    """Enqueue many jobs of one type in a few round trips (one Lua call per chunk).

    Every payload is validated before anything is written, so a bad item
    records nothing. Raises what ``enqueue`` raises.
    """
    registry.get(queue)
    submitted = producer.submit(_task(queue, name), list(items), opts)
    return [JobHandle(queue, s.job_id, created=s.created) for s in submitted]


def cancel_job(queue: str, job_id: str) -> str:
    """Cancel a job: a waiting or delayed job becomes ``cancelled`` and never runs;
    an active job is flagged so its code sees ``ctx.cancelled`` (cooperative).

    Returns ``"cancelled"`` or ``"requested"`` (active job).

    Raises:
        JobNotFound: no such job.
        InvalidJobState: it already completed, failed or was cancelled.
    """
    ok, detail = store.cancel(queue, job_id)
    if not ok:
        if detail == "missing":
            raise JobNotFound(queue, job_id)
        raise InvalidJobState(f"job {job_id!r} is {detail}; only waiting, delayed or active "
                              "jobs can be cancelled")
    return detail


def change_priority(queue: str, job_id: str, priority: int) -> None:
    """Give a waiting or delayed job a new priority (0 runs first, 9 last).

    The job gets a new generation and message; its old message becomes a no-op.

    Raises:
        JobValidationError: priority outside 0..9.
        JobNotFound: no such job.
        InvalidJobState: the job is active, finished or cancelled.
    """
    options.parse({"priority": priority}, where="change_priority")
    for _ in range(5):  # retried only if another change raced this one
        found = store.read_job(queue, job_id)
        if found is None:
            raise JobNotFound(queue, job_id)
        record = found[0]
        gen = int(record["gen"])
        message = producer.rebuild_message(record, gen=gen + 1, priority=priority)
        ok, reason = store.change_priority(queue, job_id, priority=priority, gen=gen,
                                           message=message)
        if ok:
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
    with store.backend():
        due = store.client().zrange(keys.state_index(queue, "delayed"), 0, limit - 1,
                                    withscores=True)
        pipe = store.client().pipeline(transaction=False)
        for job_id, _score in due:
            pipe.hmget(keys.job(queue, job_id.decode()), "name", "priority", "attempts_made")
        rows = pipe.execute()
    return [
        ScheduledJob(job_id.decode(), row[0].decode(), datetime.fromtimestamp(score / 1000, UTC),
                     int(row[1]), int(row[2]))
        for (job_id, score), row in zip(due, rows, strict=True) if row[0] is not None
    ]
