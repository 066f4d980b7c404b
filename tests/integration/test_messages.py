"""Golden test: the coordinator's prebuilt message equals what Celery itself publishes.

If a Celery/kombu upgrade changes the envelope, this fails before workers do.
"""

from __future__ import annotations

import base64
import json

import redis
from celery import Task

from coordinator_project.celery import app
from queues.messages import MessageTemplate
from tests import fixtures_tasks as t

PAYLOAD = {"value": 7, "note": "golden"}
VARYING = {"id", "root_id", "origin", "correlation_id", "delivery_tag", "reply_to"}


def _celery_published(r: redis.Redis, queue: str, priority: int) -> dict:
    # Celery's own Task.apply_async, bypassing the coordinator's override.
    Task.apply_async(app.tasks[t.echo.name], args=(PAYLOAD,), queue=queue, priority=priority,
                     headers={"jq_job": "j1", "jq_gen": 1, "jq_trace": "tr"})
    key = queue if priority == 0 else f"{queue}\x06\x16{priority}"
    [raw] = r.lrange(key, 0, -1)
    return json.loads(raw)


def _strip(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in VARYING}


def test_template_matches_celery_publish(r: redis.Redis) -> None:
    for priority in (0, 6):
        theirs = _celery_published(r, "golden", priority)
        ours_msg = MessageTemplate(app, t.echo, "golden").build(
            PAYLOAD, priority=priority, job_headers={"job": "j1", "gen": 1, "trace": "tr"})
        ours = json.loads(ours_msg.body)
        assert ours_msg.broker_key == ("golden" if priority == 0 else f"golden\x06\x16{priority}")
        assert set(ours) == set(theirs)
        assert _strip(ours["headers"]) == _strip(theirs["headers"])
        assert _strip(ours["properties"]) == _strip(theirs["properties"])
        assert json.loads(base64.b64decode(ours["body"])) == json.loads(
            base64.b64decode(theirs["body"]))
        assert ours["content-type"] == theirs["content-type"] == "application/json"
        r.flushall()


def test_every_message_has_its_own_ids() -> None:
    template = MessageTemplate(app, t.echo, "golden")
    a, b = (json.loads(template.build({}, priority=0, job_headers={}).body) for _ in range(2))
    assert a["headers"]["id"] != b["headers"]["id"]
    assert a["properties"]["delivery_tag"] != b["properties"]["delivery_tag"]
