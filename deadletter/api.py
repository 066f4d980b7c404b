"""Ops HTTP API, dead-letter part: the seed's ``/queues/<name>/failed`` paths.

``<id>`` in these paths is the seed's *job* id: the job's latest dead letter is
acted on (DESIGN §8.3): 404 if it has none, 409 if it was already requeued.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from deadletter import services
from deadletter.models import DeadLetter
from queues.http.api import require

router = Router(tags=["dead letters"])


def _row(row: DeadLetter) -> dict[str, Any]:
    return {
        "deadLetterId": row.pk, "id": row.job_id, "queueName": row.queue, "name": row.job_name,
        "data": row.payload, "attempts": row.attempts, "failedAt": row.failed_at,
        "reason": row.reason, "status": row.status, "requeuedAs": row.requeued_as or None,
        "error": {"name": row.error_type, "message": row.error_message,
                  "stack": row.traceback},
        "originalJobOptions": row.options,
    }


@router.get("/queues/{name}/failed")
def failed(request: HttpRequest, name: str, limit: int = Query(50, ge=1, le=1000),
           status: str = Query("open", pattern="^(open|requeued|archived|all)$")
           ) -> dict[str, Any]:
    require(request, "view", name)
    rows = services.failed_jobs(name, limit, status=None if status == "all" else status)
    return {"queueName": name, "failedJobs": [_row(r) for r in rows]}


@router.get("/queues/{name}/failed/stats")
def failed_statistics(request: HttpRequest, name: str) -> dict[str, Any]:
    require(request, "view", name)
    return asdict(services.dead_letter_statistics(name))


@router.post("/queues/{name}/failed/{job_id}/requeue")
def requeue(request: HttpRequest, name: str, job_id: str) -> dict[str, Any]:
    who = require(request, "manage", name)
    row = services.latest_for_job(name, job_id)
    result = services.requeue_dead_letter(row.pk, actor=who.actor)
    return {"id": job_id, "deadLetterId": row.pk, "newJobId": result.job_id}


@router.post("/queues/{name}/failed/{job_id}/archive")
def archive(request: HttpRequest, name: str, job_id: str) -> dict[str, Any]:
    who = require(request, "manage", name)
    row = services.archive_dead_letter(services.latest_for_job(name, job_id).pk,
                                       actor=who.actor)
    return {"id": job_id, "deadLetterId": row.pk, "status": row.status}


@router.delete("/queues/{name}/failed")
def purge(request: HttpRequest, name: str,
          older_than_days: int | None = Query(None, ge=0, le=36500)) -> dict[str, Any]:
    who = require(request, "manage", name)
    older = timedelta(days=older_than_days) if older_than_days is not None else None
    return {"queueName": name,
            "purged": services.purge_dead_letters(name, older_than=older, actor=who.actor)}
