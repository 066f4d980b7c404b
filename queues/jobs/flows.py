"""Parent-child flows (BullMQ's flows): a parent runs once, after every child ended.

    from queues.jobs.flows import FlowJob, enqueue_flow

    flow = enqueue_flow(
        FlowJob("batch-processing", "batch-cleanup", {"batchId": "b1"}),
        [FlowJob("photo-processing", "generate-thumbnails", {"photoId": f"p{n}"})
         for n in range(1000)])
    flow.job.wait(60)

Children run on any queues, and may be parents themselves. The parent reads what
they returned with ``ctx.children_results()`` (by child id). What a child's failure
(its last attempt failed, it expired or stalled, or it was cancelled) does is its
``on_failure``: ``fail_parent`` (the default: the parent fails at once with the
child's error and is dead-lettered), ``ignore`` (the parent runs and sees it in
``ctx.children_failures()``) or ``remove`` (it only stops counting).

The counts live in the job records and change inside the scripts that end a child
(``queues/store/lua/flow.lua``), so nothing polls (no ``chord_unlock``) and a flow
holds across killed workers: a child's end is recorded once whatever recovered it.
The whole flow is recorded in one script, or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from queues import registry, signals, store
from queues.conf import settings
from queues.exceptions import InvalidJobState, JobNotFound, JobValidationError
from queues.jobs import producer
from queues.jobs.info import JobHandle, JobInfo, get_job
from queues.store import flows as flow_store

OnFailure = Literal["fail_parent", "ignore", "remove"]
ON_FAILURE = ("fail_parent", "ignore", "remove")
MAX_FLOW_JOBS = 10_000  # jobs of one flow: one script records them all
MAX_FLOW_DEPTH = 16
# options that make no sense on a job that waits for its children
_NOT_ON_PARENTS = ("delay_ms", "run_at", "dedup")


@dataclass(frozen=True)
class FlowJob:
    """A job of a flow: what ``enqueue`` takes, its children, and what its failure does."""

    queue: str
    name: str
    data: Any = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    children: Sequence[FlowJob] = ()
    on_failure: OnFailure = "fail_parent"


@dataclass(frozen=True)
class FlowHandle:
    """What ``enqueue_flow`` returns: the job's handle and its children's, in order."""

    job: JobHandle
    children: tuple[FlowHandle, ...] = ()

    def ids(self) -> Iterator[str]:
        """Every job id of the flow, parents first."""
        yield self.job.id
        for child in self.children:
            yield from child.ids()


@dataclass(frozen=True)
class FlowNode:
    """What ``get_flow`` returns: a job's state and its children's, as a tree."""

    job: JobInfo
    on_failure: str | None  # None for the root
    children: tuple[FlowNode, ...] = ()
    pending: int = 0  # children not ended yet, while it waits for them

    def as_dict(self) -> dict[str, Any]:
        return {"queue": self.job.queue, "id": self.job.id, "name": self.job.name,
                "state": self.job.state, "on_failure": self.on_failure,
                "pending": self.pending, "children": [c.as_dict() for c in self.children]}


def _walk(job: FlowJob, depth: int = 1) -> Iterator[tuple[FlowJob, int]]:
    yield job, depth
    for child in job.children:
        yield from _walk(child, depth + 1)


def _check(root: FlowJob) -> None:
    """Raises JobValidationError for a flow that cannot be recorded as given."""
    count = 0
    for job, depth in _walk(root):
        count += 1
        if not isinstance(job, FlowJob):
            raise JobValidationError("a flow is made of FlowJob", field="children")
        if depth > MAX_FLOW_DEPTH:
            raise JobValidationError(f"a flow is at most {MAX_FLOW_DEPTH} levels deep",
                                     field="children")
        if job.on_failure not in ON_FAILURE:
            raise JobValidationError(f"on_failure must be one of {', '.join(ON_FAILURE)}",
                                     field="on_failure")
        if job.children:
            for name in _NOT_ON_PARENTS:
                if job.options.get(name) is not None:
                    raise JobValidationError(
                        f"{name} cannot be given to a parent: it runs when its children "
                        "have ended", field=name)
        elif job.options.get("dedup") is not None:
            raise JobValidationError("dedup applies to jobs enqueued alone, not in a flow",
                                     field="dedup")
    if count > MAX_FLOW_JOBS:
        raise JobValidationError(f"a flow has at most {MAX_FLOW_JOBS} jobs, not {count}",
                                 field="children")


def enqueue_flow(parent: FlowJob, children: Sequence[FlowJob] = ()) -> FlowHandle:
    """Record a flow: ``parent`` (with ``children`` added to its own) runs once all ended.

    Every job is validated as ``enqueue`` validates it before anything is written, and
    the flow is recorded in one script: all of it, or nothing.

    Raises:
        QueueTypeNotFound, UnknownJobType, JobValidationError, PayloadTooLarge: a job
            of the flow is invalid (the message says which); nothing was recorded.
        InvalidJobState: a ``job_id`` given in the flow exists already.
        RateLimited: a ``client_id`` over MAX_JOBS_PER_MINUTE.
        BackendUnavailable: Redis is unreachable.
    """
    from queues.jobs import task_name

    root = FlowJob(parent.queue, parent.name, parent.data, parent.options,
                   (*parent.children, *children), parent.on_failure)
    _check(root)
    now = store.now_ms()
    records: list[flow_store.FlowJob] = []
    seen: set[str] = set()
    per_client: dict[str, int] = {}

    def build(job: FlowJob, up: tuple[str, str] | None, on_failure: str) -> FlowHandle:
        registry.get(job.queue)
        task = producer.job_task(task_name(job.queue, job.name))
        try:
            ready = producer.prepare(task, job.data, dict(job.options), now=now)
        except JobValidationError as exc:  # PayloadTooLarge included: say which job
            raise JobValidationError(f"job {job.queue}/{job.name} of the flow: {exc}") from None
        job_id = ready.job.job_id
        if job_id in seen:
            raise JobValidationError(f"job id {job_id!r} appears twice in the flow",
                                     field="job_id")
        seen.add(job_id)
        if ready.opts.client_id:
            per_client[ready.opts.client_id] = per_client.get(ready.opts.client_id, 0) + 1
        fields = {**ready.batch.fields, "data": ready.job.data, "trace_id": ready.job.trace_id,
                  "task_id": ready.job.task_id}
        if up is not None:
            fields.update(parent_queue=up[0], parent_id=up[1], parent_policy=on_failure)
        records.append(flow_store.FlowJob(
            job.queue, job_id, fields, ready.job.message, ready.batch.broker_key,
            len(job.children), ready.batch.due_ms, up))
        return FlowHandle(JobHandle(job.queue, job_id), tuple(
            build(child, (job.queue, job_id), child.on_failure) for child in job.children))

    handle = build(root, None, "")
    if settings.ENABLE_RATE_LIMITING:
        for client_id, count in per_client.items():
            store.take_rate(client_id, count, settings.MAX_JOBS_PER_MINUTE, now=now)
    taken = flow_store.record_flow(records)
    if taken is not None:
        raise InvalidJobState(f"job {taken[0]}/{taken[1]} exists already; the flow was not "
                              "recorded")
    return handle


def get_flow(queue: str, job_id: str, *, limit: int = MAX_FLOW_JOBS) -> FlowNode:
    """The flow below ``job_id`` as a tree of job states (at most ``limit`` jobs read).

    Raises:
        JobNotFound: no such job.
    """
    budget = [limit]

    def node(q: str, i: str) -> FlowNode:
        info = get_job(q, i)
        budget[0] -= 1
        kids = []
        for child_queue, child_id in flow_store.children(q, i):
            if budget[0] <= 0:
                break
            try:
                kids.append(node(child_queue, child_id))
            except JobNotFound:
                continue  # trimmed by retention since
        pending = store.fields(q, i, "pending")[0] if info.state == "waiting-children" else None
        return FlowNode(info, info.on_failure, tuple(kids), int(pending or 0))

    registry.get(queue)
    return node(queue, job_id)


def cancel_flow(queue: str, job_id: str, *, actor: str = "system") -> int:
    """Cancel a job and every job of the flow below it that has not ended; how many.

    Top-down: a parent is cancelled before its children, so their cancellation
    does not fail it. A running child is only flagged (``ctx.cancelled``). Each
    job is cancelled (and audited) through ``cancel_job``.

    Raises:
        JobNotFound: no such job.
    """
    from queues.jobs import cancel_job

    cancelled = 0

    def cancel(q: str, i: str) -> None:
        nonlocal cancelled
        try:
            cancel_job(q, i, actor=actor)
            cancelled += 1
        except InvalidJobState:
            pass  # it ended already
        for child_queue, child_id in flow_store.children(q, i):
            cancel(child_queue, child_id)

    get_job(queue, job_id)
    cancel(queue, job_id)
    signals.announce(actor, "cancel_flow", target_type="job", target_id=job_id, queue=queue,
                     job_id=job_id, cancelled=cancelled)
    return cancelled
