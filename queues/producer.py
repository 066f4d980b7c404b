"""The enqueue path: validate, resolve options, build messages, record and publish.

One Lua call records each chunk of jobs and pushes their Celery messages, so a
job is never recorded without a message (DESIGN §4a). Nothing here touches
SQL: the queue type comes from the process snapshot in ``queues.registry``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from queues import options, registry, store
from queues.conf import settings
from queues.exceptions import JobValidationError, PayloadTooLarge, UnknownJobType
from queues.messages import BuiltMessage, MessageTemplate, new_id, new_task_id

if TYPE_CHECKING:
    from queues.task import JobTask

CHUNK = 500  # jobs per enqueue script call: big enough to amortise, small enough not to stall Redis
# The record's ``data``: compact JSON. One encoder, as ``json.dumps`` with
# ``separators`` would build a new one on every call. ``queues.payload.check``
# has bounded the depth (so no cycles) and refused NaN before it runs.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False, allow_nan=False)


@dataclass(frozen=True)
class Submitted:
    job_id: str
    created: bool


def _template(task: JobTask) -> MessageTemplate:
    # One template per task and process: its "origin" header names the process.
    cached = task.__dict__.get("_jq_template")
    if cached is None or cached[0] != os.getpid():
        cached = (os.getpid(), MessageTemplate(task.app, task, task.job_queue))
        task.__dict__["_jq_template"] = cached
    return cached[1]


def encode_payload(task: JobTask, data: Any, *, limit: int) -> tuple[Any, str]:
    """The payload (as JSON-ready data, and as JSON) after schema validation and size limit.

    The strict JSON rules of ``queues.payload`` (finite numbers, depth, storable
    strings) run inside ``task.validate_payload``, after the schema.

    Raises:
        JobValidationError: the payload fails the job's schema or is not strict JSON.
        PayloadTooLarge: the JSON is larger than ``limit`` bytes.
    """
    value = task.validate_payload(data)
    try:
        encoded = _COMPACT_JSON.encode(value)
    except ValueError as exc:  # an int past Python's 4300-digit str() limit
        raise JobValidationError(f"cannot be encoded as JSON: {exc}", field="data") from None
    # ASCII-only (the encoder escapes the rest), so characters are bytes.
    if len(encoded) > limit:
        raise PayloadTooLarge(len(encoded), limit)
    return value, encoded


def submit(task: JobTask, items: Sequence[Any], call_options: dict[str, Any]) -> list[Submitted]:
    """Enqueue ``items`` (payloads) as jobs of ``task``; validates everything first.

    Raises:
        QueueTypeNotFound, JobValidationError, PayloadTooLarge, UnknownJobType (the
            queue type lists its job types, not this one): nothing was recorded or published.
        RateLimited: a job with a ``client_id`` over MAX_JOBS_PER_MINUTE (seed §10.1).
        BackendUnavailable: Redis is unreachable.
    """
    spec = registry.get(task.job_queue)
    if spec.accepted_job_types is not None and task.job_name not in spec.accepted_job_types:
        raise UnknownJobType(task.job_queue, task.job_name, spec.accepted_job_types)
    now = store.now_ms()
    opts = options.resolve(
        options.parse(call_options, where="call"), task.job_defaults,
        spec.default_options, options.global_defaults(), now_ms=now,
    )
    if opts.job_id is not None and len(items) > 1:
        raise JobValidationError("job_id names one job; enqueue_many takes none", field="job_id")
    limit = settings.MAX_JOB_DATA_SIZE
    payloads = [encode_payload(task, data, limit=limit) for data in items]
    if opts.client_id and settings.ENABLE_RATE_LIMITING:
        store.take_rate(opts.client_id, len(payloads), settings.MAX_JOBS_PER_MINUTE, now=now)
    template = _template(task)
    batch = _batch(task, spec, opts, template, now)
    jobs = [_new_job(template, opts, payload) for payload in payloads]
    created: list[bool] = []
    for start in range(0, len(jobs), CHUNK):
        created += store.enqueue(batch, jobs[start:start + CHUNK], now=now)
    return [Submitted(job.job_id, flag) for job, flag in zip(jobs, created, strict=True)]


def _batch(task: JobTask, spec: registry.QueueTypeSpec, opts: options.ResolvedOptions,
           template: MessageTemplate, now: int) -> store.JobBatch:
    """The record fields, due time and broker list that every job of one call shares."""
    fields = {
        "name": task.job_name, "queue": task.job_queue, "task": task.name,
        "opts": opts.model_dump_json(exclude={"job_id"}),
        "priority": str(opts.priority), "max_attempts": str(opts.attempts),
        "client_id": opts.client_id or "",
        "lock_ms": str(spec.stalled_interval_ms), "max_stalled": str(spec.max_stalled_count),
        "keep_completed": str(options.keep_count(opts.remove_on_complete)),
        "keep_failed": str(options.keep_count(opts.remove_on_fail)),
    }
    due = now + opts.delay_ms if opts.delay_ms else 0
    return store.JobBatch(task.job_queue, due, template.broker_key(opts.priority), fields)


def _new_job(template: MessageTemplate, opts: options.ResolvedOptions,
             payload: tuple[Any, str]) -> store.NewJob:
    job_id = opts.job_id or new_id()
    trace_id = opts.trace_id or new_id()
    task_id = new_task_id()
    headers: dict[str, Any] = {"job": job_id, "gen": 1, "trace": trace_id}
    if opts.client_id:
        headers["client"] = opts.client_id
    message = template.envelope(task_id, payload[0], opts.priority, headers)
    return store.NewJob(job_id, payload[1], trace_id, task_id, message)


def job_task(task_name: str) -> JobTask:
    """The declared job task called ``task_name``.

    Raises:
        UnknownJobType: no ``@job`` of that name is loaded in this process.
    """
    from celery import current_app

    from queues.exceptions import UnknownJobType
    from queues.task import JobTask

    task = current_app.tasks.get(task_name)
    if not isinstance(task, JobTask):
        queue, _, name = task_name.partition(":")
        raise UnknownJobType(queue, name)
    return task


def next_message(record: store.JobRecord, *, priority: int | None = None) -> BuiltMessage:
    """The job's next message: generation ``record.gen + 1``, its priority unless one is given.

    Every message but a job's first is made here (a retry, a recovery, a
    hand-over, a release from pause, a priority change). The headers come from
    the record, as ``_new_job`` set them: ``client`` only when the job has a
    ``client_id``.

    Raises:
        UnknownJobType: the job's task is not loaded in this process.
    """
    task = job_task(record.task)
    headers: dict[str, Any] = {"job": record.id, "gen": record.gen + 1,
                               "trace": record.trace_id}
    if record.client_id:
        headers["client"] = record.client_id
    return _template(task).build(
        json.loads(record.data),
        priority=record.priority if priority is None else priority,
        job_headers=headers,
    )
