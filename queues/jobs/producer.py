"""The producer side of a job: how a call becomes recorded, published jobs.

Everything between an ``.delay()`` (or ``enqueue``, beat, the ops API) and Redis
is here, in the order it happens:

- ``JobDeclaration``: what ``@job`` declares (queue, name, schema, defaults) and the
  Celery calls that enqueue it (``apply_async``, ``delay_on_commit``, ...). The
  worker side, ``queues.jobs.task.JobTask``, builds on it.
- the call's shape (``payload_from_call``), the schema and strict-JSON check
  (``JobDeclaration.validate_payload``), Celery's option names mapped onto the
  coordinator's (``celery_options``);
- ``submit``: options resolved, messages built, and one Lua call per chunk that
  records the jobs and pushes their Celery messages, so a job is never recorded
  without a message (DESIGN §4a); ``next_message`` makes every later message.

Nothing here touches SQL (the queue type comes from the process snapshot in
``queues.registry``), and nothing here imports the worker side.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pydantic
from celery import Task

from queues import options, registry, store
from queues.conf import settings
from queues.exceptions import (
    InvalidJobState,
    JobValidationError,
    PayloadTooLarge,
    UnknownJobType,
)
from queues.jobs.info import JobHandle
from queues.jobs.messages import BuiltMessage, MessageTemplate, new_id, new_task_id
from queues.jobs.payload import check as check_payload
from queues.options import JobOptions

CHUNK = 500  # jobs per enqueue script call: big enough to amortise, small enough not to stall Redis
# The record's ``data``: compact JSON. One encoder, as ``json.dumps`` with
# ``separators`` would build a new one on every call. ``queues.jobs.payload.check``
# has bounded the depth (so no cycles) and refused NaN before it runs.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False, allow_nan=False)


@dataclass(frozen=True)
class Submitted:
    job_id: str
    created: bool


class JobDeclaration(Task):
    """What ``@job`` declares, and the Celery calls that enqueue it as a tracked job."""

    job_queue: str = ""
    job_name: str = ""
    schema: type[pydantic.BaseModel] | None = None
    job_defaults: JobOptions = JobOptions()
    dont_retry: tuple[type[BaseException], ...] = ()
    # (hard, soft) seconds declared by ``@job``; None: the queue type's (or none).
    job_time_limits: tuple[float | None, float | None] = (None, None)

    def apply_async(self, args: Any = None, kwargs: Any = None, **call_options: Any) -> JobHandle:
        """Enqueue one tracked job; Celery's ``countdown``/``eta``/``task_id`` are honoured.

        Raises:
            JobValidationError, PayloadTooLarge, QueueTypeNotFound, BackendUnavailable.
        """
        payload = payload_from_call(args or (), kwargs or {})
        submitted = submit(self, [payload], celery_options(self.job_queue, call_options))[0]
        return JobHandle(self.job_queue, submitted.job_id, created=submitted.created)

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``delay`` once the surrounding transaction commits; nothing if it rolls back.

        Raises:
            JobValidationError, PayloadTooLarge: checked now, not at commit.
        """
        self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(self, args: Any = None, kwargs: Any = None,
                              **call_options: Any) -> None:
        """``apply_async`` once the surrounding transaction commits (Celery's ``DjangoTask``).

        Returns nothing, as Celery's does: the job does not exist yet (give
        ``task_id`` to know its id). Outside a transaction it runs at once.

        Raises:
            JobValidationError, PayloadTooLarge: checked now, not at commit.
        """
        from django.db import transaction

        options.parse(celery_options(self.job_queue, call_options), where="call")
        encode_payload(self, payload_from_call(args or (), kwargs or {}),
                       limit=settings.MAX_JOB_DATA_SIZE)
        transaction.on_commit(lambda: self.apply_async(args, kwargs, **call_options))

    def validate_payload(self, data: Any) -> Any:
        """The payload as JSON-ready data, checked against the job's schema.

        Raises:
            JobValidationError: naming the first invalid field.
        """
        if isinstance(data, pydantic.BaseModel):
            data = data.model_dump(mode="json")
        if not isinstance(data, dict):
            raise JobValidationError("payload must be a JSON object (a dict)", field="data")
        if self.schema is not None:
            try:
                data = self.schema.model_validate(data).model_dump(mode="json")
            except pydantic.ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(["data", *(str(p) for p in err["loc"])])
                raise JobValidationError(err["msg"], field=field) from None
        # After the schema too: a float field lets NaN through, a str field NUL.
        check_payload(data)
        return data


def payload_from_call(args: Any, kwargs: dict[str, Any]) -> Any:
    """A job takes one payload: a single positional dict/model, or keyword fields.

    Raises:
        JobValidationError: for any other shape of arguments.
    """
    if len(args) == 1 and not kwargs:
        return args[0]
    if not args:
        return dict(kwargs)
    raise JobValidationError(
        "pass the payload as one dict (or model) or as keyword arguments", field="data")


# Celery's own names for options that map onto the coordinator's (``expires``,
# seconds or a datetime, keeps its name: the job's deadline).
_CELERY_OPTION_MAP = {"countdown": "delay_ms", "eta": "run_at", "task_id": "job_id"}
# Celery publishing options that only restate what the coordinator does: accepted
# when they say exactly that, refused otherwise (never silently dropped). A job's
# queue is fixed by its declaration; messages are JSON, published by the enqueue
# script (no kombu producer, no custom headers: trace_id/client_id travel as jq_ headers).
_RESTATED_CELERY_OPTIONS = {
    "queue": "the job's own queue", "routing_key": "the job's own queue",
    "exchange": "the default exchange ''", "serializer": "'json'",
}
_REFUSED_CELERY_OPTIONS = {
    "headers": "custom headers are not carried; use trace_id= or client_id=",
    "producer": "the coordinator publishes through its enqueue script, not a kombu producer",
}


def celery_options(queue: str, given: dict[str, Any]) -> dict[str, Any]:
    """Celery's ``apply_async`` options (for a job of ``queue``) as the coordinator's.

    Raises:
        JobValidationError: naming an option the coordinator cannot honour.
    """
    out: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:  # Celery's "not given"
            continue
        if key in _REFUSED_CELERY_OPTIONS:
            raise JobValidationError(_REFUSED_CELERY_OPTIONS[key], field=key)
        if key in _RESTATED_CELERY_OPTIONS:
            expected = {"exchange": "", "serializer": "json"}.get(key, queue)
            if value != expected:
                raise JobValidationError(
                    f"must be {_RESTATED_CELERY_OPTIONS[key]} ({expected!r}) if given, "
                    f"not {value!r}", field=key)
            continue
        if key == "countdown":
            value = int(float(value) * 1000)
        out[_CELERY_OPTION_MAP.get(key, key)] = value
    return out



def _template(task: JobDeclaration) -> MessageTemplate:
    # One template per task and process: its "origin" header names the process.
    cached = task.__dict__.get("_jq_template")
    if cached is None or cached[0] != os.getpid():
        cached = (os.getpid(), MessageTemplate(task.app, task, task.job_queue))
        task.__dict__["_jq_template"] = cached
    return cached[1]


def encode_payload(task: JobDeclaration, data: Any, *, limit: int) -> tuple[Any, str]:
    """The payload (as JSON-ready data, and as JSON) after schema validation and size limit.

    The strict JSON rules of ``queues.jobs.payload`` (finite numbers, depth, storable
    strings) run inside ``JobDeclaration.validate_payload``, after the schema.

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


def submit(task: JobDeclaration, items: Sequence[Any],
           call_options: dict[str, Any]) -> list[Submitted]:
    """Enqueue ``items`` (payloads) as jobs of ``task``; validates everything first.

    Raises:
        QueueTypeNotFound, JobValidationError, PayloadTooLarge, UnknownJobType (the
            queue type lists its job types, not this one): nothing was recorded or published.
        RateLimited: a job with a ``client_id`` over MAX_JOBS_PER_MINUTE (seed §10.1).
        BackendUnavailable: Redis is unreachable.
    """
    now = store.now_ms()
    spec, opts = _resolve(task, call_options, now)
    _check_single(opts, len(items))
    limit = settings.MAX_JOB_DATA_SIZE
    payloads = [encode_payload(task, data, limit=limit) for data in items]
    if opts.client_id and settings.ENABLE_RATE_LIMITING:
        store.take_rate(opts.client_id, len(payloads), settings.MAX_JOBS_PER_MINUTE, now=now)
    template = _template(task)
    batch = _batch(task, spec, opts, template, now)
    if opts.dedup is not None:  # one job (``_check_single``), through its own script
        return [_submit_dedup(task, batch, _new_job(template, opts, payloads[0]),
                              dedup=opts.dedup, now=now)]
    jobs: list[store.NewJob] = []

    def chunks() -> Iterator[list[store.NewJob]]:
        # built as the store sends them: Redis runs one chunk while the next is made
        for start in range(0, len(payloads), CHUNK):
            chunk = [_new_job(template, opts, payload) for payload in payloads[start:start + CHUNK]]
            jobs.extend(chunk)
            yield chunk

    created = store.enqueue(batch, chunks(), now=now)
    return [Submitted(job.job_id, flag) for job, flag in zip(jobs, created, strict=True)]


def _resolve(task: JobDeclaration, call_options: dict[str, Any],
             now: int) -> tuple[registry.QueueTypeSpec, options.ResolvedOptions]:
    """The job's queue type and its options after precedence (DESIGN §8.12).

    Raises:
        QueueTypeNotFound, UnknownJobType, JobValidationError.
    """
    spec = registry.get(task.job_queue)
    if spec.accepted_job_types is not None and task.job_name not in spec.accepted_job_types:
        raise UnknownJobType(task.job_queue, task.job_name, spec.accepted_job_types)
    opts = options.resolve(
        options.parse(call_options, where="call"), task.job_defaults,
        spec.default_options, options.global_defaults(), now_ms=now,
    )
    return spec, opts


@dataclass(frozen=True)
class Prepared:
    """One job validated and built, not yet recorded: what ``submit`` would write."""

    batch: store.JobBatch
    job: store.NewJob
    opts: options.ResolvedOptions


def prepare(task: JobDeclaration, data: Any, call_options: dict[str, Any], *,
            now: int) -> Prepared:
    """Validate one job and build its record fields and message (a job of a flow).

    Raises:
        QueueTypeNotFound, UnknownJobType, JobValidationError, PayloadTooLarge.
    """
    spec, opts = _resolve(task, call_options, now)
    payload = encode_payload(task, data, limit=settings.MAX_JOB_DATA_SIZE)
    template = _template(task)
    return Prepared(_batch(task, spec, opts, template, now), _new_job(template, opts, payload),
                    opts)


def _check_single(opts: options.ResolvedOptions, count: int) -> None:
    """Options that name one job are refused for an ``enqueue_many`` of several.

    Raises:
        JobValidationError: ``job_id`` or ``dedup`` with more than one item.
    """
    if count > 1 and opts.job_id is not None:
        raise JobValidationError("job_id names one job; enqueue_many takes none", field="job_id")
    if count > 1 and opts.dedup is not None:
        raise JobValidationError("dedup applies to one job at a time; enqueue_many takes none",
                                 field="dedup")


# A debounce rebuilds the delayed job's message when another transition (a priority
# change) moved the job on in between; past this many in a row the call gives up.
_DEBOUNCE_TRIES = 10


def _submit_dedup(task: JobDeclaration, batch: store.JobBatch, job: store.NewJob, *,
                  dedup: options.Dedup, now: int) -> Submitted:
    """Enqueue ``job`` behind its dedup key (``store.enqueue_dedup``): created, or the
    key's job (throttled, or debounced with ``job``'s payload).

    Raises:
        JobValidationError: a debounce whose key names a delayed job of another type.
        InvalidJobState: the key's delayed job kept changing (priority changes).
        BackendUnavailable: Redis is unreachable.
    """
    key = store.DedupKey(dedup.key, dedup.mode, dedup.ttl_ms)
    debounce: store.Debounce | None = None
    for _ in range(_DEBOUNCE_TRIES):
        status, job_id = store.enqueue_dedup(batch, job, now=now, dedup=key, debounce=debounce)
        if status != store.DEDUP_STALE:
            return Submitted(job_id, created=status == store.DEDUP_CREATED)
        debounce = _debounce(task, batch.queue, job_id, data=job.data)
    raise InvalidJobState(f"the delayed job of dedup key {dedup.key!r} kept changing; try again")


def _debounce(task: JobDeclaration, queue: str, job_id: str, *,
              data: str) -> store.Debounce | None:
    """The delayed job ``job_id``'s next message, carrying ``data`` (None: it is gone).

    Raises:
        JobValidationError: the job is of another type (its payload would not fit).
    """
    record = store.read_record(queue, job_id)
    if record is None:
        return None  # the script then sees no job behind the key and creates one
    if record.task != task.name:
        raise JobValidationError(f"the dedup key names a delayed job of another type "
                                 f"({record.name!r})", field="dedup.key")
    # The same generation: a delayed job's current message was never published.
    message = next_message(replace(record, data=data), gen=record.gen)
    return store.Debounce(job_id, record.gen, message)


def _batch(task: JobDeclaration, spec: registry.QueueTypeSpec, opts: options.ResolvedOptions,
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
    if opts.group is not None:  # read by the flow-control scripts (queues/store/lua/gate.lua)
        fields["group"] = opts.group
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


def job_task(task_name: str) -> JobDeclaration:
    """The declared job task called ``task_name``.

    Raises:
        UnknownJobType: no ``@job`` of that name is loaded in this process.
    """
    from celery import current_app

    task = current_app.tasks.get(task_name)
    if not isinstance(task, JobDeclaration):
        queue, _, name = task_name.partition(":")
        raise UnknownJobType(queue, name)
    return task


def next_message(record: store.JobRecord, *, priority: int | None = None,
                 gen: int | None = None) -> BuiltMessage:
    """The job's next message: generation ``record.gen + 1`` unless ``gen`` is given,
    its priority unless one is given.

    Every message but a job's first is made here (a retry, a recovery, a
    hand-over, a release from pause, a priority change). The headers come from
    the record, as ``_new_job`` set them: ``client`` only when the job has a
    ``client_id``.

    Raises:
        UnknownJobType: the job's task is not loaded in this process.
    """
    task = job_task(record.task)
    headers: dict[str, Any] = {"job": record.id, "gen": record.gen + 1 if gen is None else gen,
                               "trace": record.trace_id}
    if record.client_id:
        headers["client"] = record.client_id
    return _template(task).build(
        json.loads(record.data),
        priority=record.priority if priority is None else priority,
        job_headers=headers,
    )
