"""Ops HTTP API, queue and job part (django-ninja; assembled in ``coordinator_project.api``).

Paths follow the seed's operational scripts (§12.4). Every view is thin: it
checks the caller's scope and calls one service function; errors become JSON
responses in ``coordinator_project.api``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import field_validator

from queues import jobs
from queues.http.auth import Principal
from queues.jobs import flows
from queues.jobs.payload import MAX_PAYLOAD_DEPTH
from queues.jobs.payload import check as check_payload
from queues.ops import health, limits, manager, scheduling, stats
from queues.ops import health_history as history
from queues.options import JOB_ID_PATTERN
from queues.options import parse as parse_options

router = Router(tags=["queues"])


def require(request: HttpRequest, action: str, queue: str | None = None) -> Principal:
    """The caller, if its token grants ``action`` on ``queue``; else 403."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    if not principal.can(action, queue):
        scope = f"queues:{action}" + (f"[:{queue}]" if queue else "")
        raise HttpError(403, f"token lacks scope {scope}")
    return principal


class QueueCreate(Schema):
    name: str = Field(min_length=1, max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("config")
    @classmethod
    def _storable(cls, config: dict[str, Any]) -> dict[str, Any]:
        # Free-text fields (display_name) go to SQL: no NUL or unpaired surrogates.
        check_payload(config, "config")
        return config


class EnqueueIn(Schema):
    name: str = Field(min_length=1, max_length=128)
    data: dict[str, Any] = Field(
        description=f"The payload: strict JSON, at most {MAX_PAYLOAD_DEPTH} levels deep "
                    "(the object itself is level 1), no NUL or unpaired surrogates.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Job options: priority, delay_ms, run_at, attempts, backoff, job_id "
                    f"({JOB_ID_PATTERN}), trace_id, remove_on_complete, remove_on_fail, "
                    "dedup ({key, ttl_ms, mode: throttle|debounce}; key as job_id). "
                    "client_id is ignored: the job's client id is always the token's sub.")


class FlowChildIn(Schema):
    queue: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    data: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    on_failure: Literal["fail_parent", "ignore", "remove"] = Field(
        "fail_parent", description="What this child's failure does to its parent.")
    children: list[FlowChildIn] = Field(default_factory=list)


class FlowIn(Schema):
    """A flow's parent (on the path's queue) and its children, themselves possibly parents."""

    name: str = Field(min_length=1, max_length=128)
    data: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    children: list[FlowChildIn] = Field(min_length=1)


class PriorityIn(Schema):
    priority: int


class RecurringIn(Schema):
    name: str = Field(min_length=1, max_length=128)
    data: dict[str, Any] = Field(default_factory=dict)
    cron: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"
    max_runs: int | None = Field(default=None, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


def job_options(raw: dict[str, Any]) -> dict[str, Any]:
    """A body's ``options``, checked to be job options before they become keyword
    arguments: a key naming a parameter of the service ("name", "queue", "on_commit",
    "start_date", ...) is refused (422) instead of reaching it as that parameter.

    Raises:
        JobValidationError: naming the first option that is not one.
    """
    parse_options(raw, where="options")
    return raw


@router.get("/queues")
def list_queues(request: HttpRequest) -> dict[str, Any]:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    visible = [q for q in manager.list_queues() if principal.can("view", q)]
    return {"queues": visible}


@router.post("/queues", response={201: dict})
def create_queue(request: HttpRequest, body: QueueCreate) -> Status:
    who = require(request, "manage", body.name)
    spec = manager.create_queue(body.name, body.config, actor=who.actor)
    return Status(201, {"name": spec.name, "displayName": spec.display_name})


@router.delete("/queues/{name}")
def destroy_queue(request: HttpRequest, name: str, force: bool = False) -> dict[str, Any]:
    who = require(request, "manage", name)
    return {"name": name, "redisKeysDeleted": manager.destroy_queue(name, force=force,
                                                                    actor=who.actor)}


@router.get("/queues/{name}/status")
def queue_status(request: HttpRequest, name: str) -> dict[str, Any]:
    require(request, "view", name)
    return asdict(manager.queue_status(name))


@router.post("/queues/{name}/pause")
def pause(request: HttpRequest, name: str) -> dict[str, Any]:
    manager.pause_queue(name, actor=require(request, "manage", name).actor)
    return {"name": name, "isPaused": True}


@router.post("/queues/{name}/resume")
def resume(request: HttpRequest, name: str) -> dict[str, Any]:
    released = manager.resume_queue(name, actor=require(request, "manage", name).actor)
    return {"name": name, "isPaused": False, "releasedJobs": released}


@router.get("/queues/{name}/limits")
def get_limits(request: HttpRequest, name: str) -> dict[str, Any]:
    require(request, "view", name)
    return limits.limits_of(name).model_dump()


@router.put("/queues/{name}/limits")
def put_limits(request: HttpRequest, name: str, body: limits.QueueLimits) -> dict[str, Any]:
    """Replace the queue's limits (a limit left out or null is turned off)."""
    who = require(request, "manage", name)
    return limits.set_limits(name, body, actor=who.actor).model_dump()


@router.post("/queues/{name}/jobs", response={201: dict, 200: dict})
def enqueue(request: HttpRequest, name: str, body: EnqueueIn) -> Status:
    """Enqueue one job; 201 created, 200 when ``options.job_id`` already exists or
    ``options.dedup`` returned the key's job (throttled or debounced).

    The job's client id (its rate-limit budget, ``ctx.client_id``) is the
    token's ``sub``; an ``options.client_id`` in the body is ignored.
    """
    who = require(request, "enqueue", name)
    # The token's sub wins, so a client cannot spend another client's budget.
    options = {**job_options(body.options), "client_id": who.client_id}
    handle = jobs.enqueue(name, body.name, body.data, **options)
    return Status(201 if handle.created else 200, {"id": handle.id, "created": handle.created})


@router.post("/queues/{name}/flows", response={201: dict})
def enqueue_flow(request: HttpRequest, name: str, body: FlowIn) -> Status:
    """Enqueue a flow (``queues.jobs.flows``): the parent runs once every child ended.

    The token needs ``queues:enqueue`` on every queue of the flow; each job's client id
    is the token's ``sub``, as for one job.
    """
    def job(queue: str, item: FlowIn | FlowChildIn, on_failure: Any) -> flows.FlowJob:
        who = require(request, "enqueue", queue)
        return flows.FlowJob(
            queue, item.name, item.data, {**job_options(item.options), "client_id": who.client_id},
            [job(child.queue, child, child.on_failure) for child in item.children], on_failure)

    def tree(handle: flows.FlowHandle) -> dict[str, Any]:
        return {"queue": handle.job.queue, "id": handle.job.id,
                "children": [tree(child) for child in handle.children]}

    return Status(201, tree(flows.enqueue_flow(job(name, body, "fail_parent"))))


@router.get("/queues/{name}/jobs/{job_id}/flow")
def get_flow(request: HttpRequest, name: str, job_id: str) -> dict[str, Any]:
    """The flow below a job: each job's queue, id, name, state, on_failure, children."""
    require(request, "view", name)
    return flows.get_flow(name, job_id).as_dict()


@router.get("/queues/{name}/jobs/{job_id}")
def get_job(request: HttpRequest, name: str, job_id: str) -> dict[str, Any]:
    require(request, "view", name)
    return asdict(jobs.get_job(name, job_id))


@router.delete("/queues/{name}/jobs/{job_id}")
def cancel_job(request: HttpRequest, name: str, job_id: str) -> dict[str, Any]:
    who = require(request, "manage", name)
    return {"id": job_id, "outcome": jobs.cancel_job(name, job_id, actor=who.actor)}


@router.post("/queues/{name}/jobs/{job_id}/promote")
def promote_job(request: HttpRequest, name: str, job_id: str) -> dict[str, Any]:
    who = require(request, "manage", name)
    jobs.promote_job(name, job_id, actor=who.actor)
    return {"id": job_id, "state": "waiting"}


@router.post("/queues/{name}/jobs/{job_id}/priority")
def change_priority(request: HttpRequest, name: str, job_id: str,
                    body: PriorityIn) -> dict[str, Any]:
    who = require(request, "manage", name)
    jobs.change_priority(name, job_id, body.priority, actor=who.actor)
    return {"id": job_id, "priority": body.priority}


@router.get("/queues/{name}/scheduled")
def scheduled(request: HttpRequest, name: str, limit: int = Query(100, ge=1, le=1000)
              ) -> dict[str, Any]:
    require(request, "view", name)
    return {"jobs": [asdict(j) for j in jobs.scheduled_jobs(name, limit)]}


@router.get("/queues/{name}/retries/stats")
def retry_statistics(request: HttpRequest, name: str) -> dict[str, Any]:
    require(request, "view", name)
    manager.queue_status(name)  # 404 for an unknown queue
    return asdict(stats.retry_statistics(name))


@router.get("/queues/{name}/recurring")
def list_recurring(request: HttpRequest, name: str) -> dict[str, Any]:
    require(request, "view", name)
    manager.queue_status(name)
    return {"recurring": [asdict(j) for j in scheduling.list_recurring(name)]}


@router.post("/queues/{name}/recurring", response={201: dict})
def add_recurring(request: HttpRequest, name: str,
                  body: RecurringIn) -> Status:
    who = require(request, "manage", name)
    job = scheduling.schedule_recurring(name, body.name, body.data, body.cron, body.timezone,
                                        max_runs=body.max_runs, actor=who.actor,
                                        **job_options(body.options))
    return Status(201, asdict(job))


@router.delete("/queues/{name}/recurring/{recurring_id}")
def cancel_recurring(request: HttpRequest, name: str, recurring_id: str) -> dict[str, Any]:
    who = require(request, "manage", name)
    if not any(j.id == recurring_id for j in scheduling.list_recurring(name)):
        raise HttpError(404, f"no recurring job {recurring_id!r} on queue {name!r}")
    scheduling.cancel_recurring(recurring_id, actor=who.actor)
    return {"id": recurring_id, "cancelled": True}


@router.post("/queues/{name}/recurring/{recurring_id}/enable")
def enable_recurring(request: HttpRequest, name: str, recurring_id: str) -> dict[str, Any]:
    """Beat fires it from the next tick on, not the ticks missed meanwhile; 409 once it
    has run its max_runs or is past its end date."""
    return _set_recurring_enabled(request, name, recurring_id, enabled=True)


@router.post("/queues/{name}/recurring/{recurring_id}/disable")
def disable_recurring(request: HttpRequest, name: str, recurring_id: str) -> dict[str, Any]:
    return _set_recurring_enabled(request, name, recurring_id, enabled=False)


def _set_recurring_enabled(request: HttpRequest, name: str, recurring_id: str, *,
                           enabled: bool) -> dict[str, Any]:
    who = require(request, "manage", name)
    if not any(j.id == recurring_id for j in scheduling.list_recurring(name)):
        raise HttpError(404, f"no recurring job {recurring_id!r} on queue {name!r}")
    return asdict(scheduling.set_recurring_enabled(recurring_id, enabled, actor=who.actor))


@router.get("/queues/{name}/health", response={200: dict, 503: dict})
def queue_health(request: HttpRequest, name: str) -> Status:
    """Seed §5.2; 503 while Redis cannot be read (status ``unknown``)."""
    require(request, "view", name)
    report = health.queue_health(name)
    return Status(503 if report.status == "unknown" else 200, report.as_dict())


@router.get("/queues/{name}/health/history")
def health_history(request: HttpRequest, name: str, hours: int = Query(24, ge=1, le=168),
                   limit: int = Query(100, ge=1, le=200)) -> dict[str, Any]:
    """Recorded health transitions (newest first) and hourly completed/failed counts."""
    require(request, "view", name)
    return history.health_history(name, hours=hours, limit=limit).as_dict()


@router.get("/queues/{name}/bottlenecks")
def bottlenecks(request: HttpRequest, name: str) -> dict[str, Any]:
    require(request, "view", name)
    return asdict(health.analyze_bottlenecks(name))


@router.get("/queues/{name}/optimize")
def optimize(request: HttpRequest, name: str) -> dict[str, Any]:
    require(request, "view", name)
    return asdict(health.optimize_queue(name))
