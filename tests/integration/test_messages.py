"""Golden test: the coordinator's prebuilt message equals what Celery itself publishes.

If a Celery/kombu upgrade changes the envelope, this fails before workers do.
"""

from __future__ import annotations

import base64
import enum
import json
import uuid
from collections import OrderedDict
from typing import Any

import pytest
import redis
from celery import Task
from celery.utils.saferepr import saferepr

from coordinator_project.celery import app
from queues.jobs.messages import MessageTemplate, args_repr, new_id, new_task_id
from tests import fixtures_tasks as t

PAYLOAD = {"value": 7, "note": "golden"}
VARYING = {"id", "root_id", "origin", "correlation_id", "delivery_tag", "reply_to"}
# argsrepr takes a fast path for plain data and falls back to saferepr otherwise:
# each payload below must come out as Celery's own message has it.
PAYLOADS = [
    PAYLOAD,
    {"photo": {"id": "p1", "sizes": [64, 128], "crop": None}, "ok": True, "at": 1.5},
    {"caption": "été à Zürich 東京 😀", "tags": ["ünï", "コード"], "ratio": 0.5, "none": None},
    {"blob": "x" * 1500, "after": [1, 2, 3]},
    {"quote": "it's", "both": "'\"", "slash": "a\\b", "nl": "line\nbreak", "tab": "\t"},
    {"levels": [[[1]], {"a": {"b": []}}], "empty": {}},  # deeper than task_repr_maxlevels
]


def _celery_published(r: redis.Redis, queue: str, priority: int,
                      payload: dict[str, Any] = PAYLOAD) -> dict:
    # Celery's own Task.apply_async, bypassing the coordinator's override.
    Task.apply_async(app.tasks[t.echo.name], args=(payload,), queue=queue, priority=priority,
                     headers={"jq_job": "j1", "jq_gen": 1, "jq_trace": "tr",
                              "kwargsrepr": repr({"job_id": "j1"})})  # Flower shows the job id
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


@pytest.mark.parametrize("payload", PAYLOADS, ids=["plain", "nested", "unicode", "long",
                                                    "escapes", "deep"])
def test_template_matches_celery_publish_for_any_payload(r: redis.Redis, payload: dict) -> None:
    theirs = _celery_published(r, "golden", 0, payload)
    ours = json.loads(MessageTemplate(app, t.echo, "golden").build(
        payload, priority=0, job_headers={"job": "j1", "gen": 1, "trace": "tr"}).body)
    assert _strip(ours["headers"]) == _strip(theirs["headers"])
    assert _strip(ours["properties"]) == _strip(theirs["properties"])
    assert base64.b64decode(ours["body"]) == base64.b64decode(theirs["body"])


def test_template_text_is_what_json_dumps_gives() -> None:
    # The template splices pre-serialised pieces; the result must still be the
    # one canonical text of the envelope.
    template = MessageTemplate(app, t.echo, "golden")
    for payload in PAYLOADS:
        body = template.build(payload, priority=3, job_headers={"job": "j", "gen": 2,
                                                                "trace": "t\u00e9"}).body
        assert json.dumps(json.loads(body)) == body


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize("payload", [
    *PAYLOADS,
    {"s": "x" * 1011}, {"s": "x" * 1012}, {"s": "x" * 1013},  # around argsrepr_maxsize
    {"k": "a b " * 260}, {"n": list(range(400))}, {"f": 1e300, "i": 10**40, "neg": -0.0},
    {"sub": OrderedDict(a=1)}, {"enum": Colour.RED}, {"t": (1, (2,))}, {"d": {"e": ()}},
    {"ctl": "\x7f\u200b", "dq": 'say "hi"'}, {},
])
def test_args_repr_is_celerys_saferepr(payload: dict) -> None:
    assert args_repr(payload, 1024, 3) == saferepr((payload,), 1024, maxlevels=3)


def test_ids_have_the_uuid4_format_celery_uses() -> None:
    for _ in range(1000):
        task_id, hex_id = new_task_id(), new_id()
        assert str(uuid.UUID(task_id)) == task_id and uuid.UUID(task_id).version == 4
        assert uuid.UUID(hex_id).hex == hex_id and uuid.UUID(hex_id).version == 4
        assert uuid.UUID(hex_id).variant == uuid.RFC_4122
