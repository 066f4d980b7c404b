"""Celery protocol-2 messages, built in Python and pushed by the enqueue script.

The coordinator replaces Celery's publish with one Lua call that records the
job and ``LPUSH``es the message (DESIGN §4a), so it builds the exact envelope
kombu's Redis transport would have pushed. ``MessageTemplate`` keeps the
constant part of a task's messages and fills in the per-job fields; a golden
test compares its output with Celery's own builder so an upgrade cannot
silently change the format.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery.utils.nodenames import anon_nodename
from celery.utils.saferepr import saferepr
from kombu.transport.redis import Channel

if TYPE_CHECKING:
    from celery import Celery, Task

# Custom headers carry this prefix: an unprefixed one could silently override
# one of Celery's own headers (``id``, ``retries``, ``eta``).
HEADER_PREFIX = "jq_"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def broker_key(app: Celery, queue: str, priority: int) -> str:
    """The Redis list kombu reads for ``queue`` at ``priority`` (0 has no suffix)."""
    if priority == 0:
        return queue
    sep = app.conf.broker_transport_options.get("sep", Channel.sep)
    return f"{queue}{sep}{priority}"


@dataclass(frozen=True)
class BuiltMessage:
    task_id: str
    broker_key: str
    body: str
    gen: int = 1


class MessageTemplate:
    """Builds the messages of one task on one queue."""

    def __init__(self, app: Celery, task: Task, queue: str) -> None:
        self.app, self.queue = app, queue
        self._headers = {
            "lang": "py", "task": task.name, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": [task.time_limit, task.soft_time_limit],
            "parent_id": None, "kwargsrepr": "{}", "origin": anon_nodename(),
            "ignore_result": bool(task.ignore_result), "replaced_task_nesting": 0,
            "stamped_headers": None, "stamps": {},
        }
        self._reply_to = app.thread_oid
        self._argsrepr_max = app.amqp.argsrepr_maxsize
        self._maxlevels = app.conf.task_repr_maxlevels

    def build(self, payload: Any, *, priority: int, job_headers: dict[str, Any]) -> BuiltMessage:
        """One message whose only positional argument is ``payload``."""
        task_id = str(uuid.uuid4())
        args = [payload]
        headers = dict(self._headers, id=task_id, root_id=task_id)
        headers["argsrepr"] = saferepr(tuple(args), self._argsrepr_max, maxlevels=self._maxlevels)
        headers.update({HEADER_PREFIX + k: v for k, v in job_headers.items()})
        body = base64.b64encode(json.dumps([args, {}, _EMBED]).encode()).decode()
        key = broker_key(self.app, self.queue, priority)
        envelope = {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "correlation_id": task_id,
                "reply_to": self._reply_to,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": self.queue},
                "priority": priority,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        return BuiltMessage(task_id=task_id, broker_key=key, body=json.dumps(envelope),
                            gen=int(job_headers.get("gen", 1)))
