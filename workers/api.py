"""Ops HTTP API, worker part: presence, pause/resume of one worker, scaling."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from queues.http.api import require
from workers import presence, scaling

router = Router(tags=["workers"])


class ScaleIn(Schema):
    targetWorkers: int = Field(ge=0, le=scaling.MAX_TARGET)


@router.post("/queues/{name}/scale")
def scale(request: HttpRequest, name: str, body: ScaleIn) -> dict[str, Any]:
    who = require(request, "manage", name)
    result = scaling.scale_workers(name, body.targetWorkers, actor=who.actor)
    return {"queueName": result.queue_name, "previousCount": result.previous_count,
            "targetCount": result.target_count, "actualCount": result.actual_count,
            "action": result.action}


@router.get("/workers")
def workers(request: HttpRequest, queue: str | None = None) -> dict[str, Any]:
    require(request, "view", queue)
    return {"workers": [asdict(w) for w in presence.list_workers(queue)]}


@router.get("/workers/{worker_id}")
def worker(request: HttpRequest, worker_id: str) -> dict[str, Any]:
    require(request, "view")
    return asdict(presence.worker_status(worker_id))


@router.post("/workers/{worker_id}/pause")
def pause_worker(request: HttpRequest, worker_id: str) -> dict[str, Any]:
    who = require(request, "manage")
    return asdict(presence.pause_worker(worker_id, actor=who.actor))


@router.post("/workers/{worker_id}/resume")
def resume_worker(request: HttpRequest, worker_id: str) -> dict[str, Any]:
    who = require(request, "manage")
    return asdict(presence.resume_worker(worker_id, actor=who.actor))
