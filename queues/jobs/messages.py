"""Celery protocol-2 messages, built in Python and pushed by the enqueue script.

The coordinator replaces Celery's publish with one Lua call that records the
job and ``LPUSH``es the message (DESIGN §4a), so it builds the exact envelope
kombu's Redis transport would have pushed. ``MessageTemplate`` serialises the
constant part of a task's messages once and splices in the per-job fields; a
golden test compares its output with Celery's own builder so an upgrade cannot
silently change the format.
"""

from __future__ import annotations

import binascii
import functools
import json
import os
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _json_str
from typing import TYPE_CHECKING, Any

from celery.utils.nodenames import anon_nodename
from celery.utils.saferepr import saferepr
from kombu.transport.redis import Channel

if TYPE_CHECKING:
    from celery import Celery, Task

# Custom headers carry this prefix: an unprefixed one could silently override
# one of Celery's own headers (``id``, ``retries``, ``eta``). A job's messages
# carry ``jq_job``, ``jq_gen``, ``jq_trace`` and, when it has one, ``jq_client``.
HEADER_PREFIX = "jq_"
# The body after the positional args: no kwargs and no callbacks, errbacks, chain or chord.
_BODY_TAIL = '], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'
# The version (4) and variant (RFC 4122) bits of a random UUID, as ``uuid.uuid4`` sets them.
_UUID4_MASK = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_BITS = (0x8000 << 48) | (4 << 76)
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def new_id() -> str:
    """A random id in ``uuid.uuid4().hex`` form, without the cost of a ``UUID`` object."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_MASK | _UUID4_BITS:032x}"


def new_task_id() -> str:
    """A random id in ``str(uuid.uuid4())`` form: Celery's task ids and delivery tags."""
    h = new_id()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def broker_key(app: Celery, queue: str, priority: int) -> str:
    """The Redis list kombu reads for ``queue`` at ``priority`` (0 has no suffix)."""
    if priority == 0:
        return queue
    sep = app.conf.broker_transport_options.get("sep", Channel.sep)
    return f"{queue}{sep}{priority}"


def broker_keys(app: Celery, queue: str) -> list[str]:
    """Every Redis list kombu reads for ``queue``, indexed by priority (0 to 9)."""
    return [broker_key(app, queue, priority) for priority in range(10)]


def _json(value: Any) -> str:
    # The exact text ``json.dumps`` gives, faster for the common str and int values.
    kind = type(value)
    if kind is str:
        return _json_str(value)
    return str(value) if kind is int else json.dumps(value)


@functools.lru_cache(maxsize=64)
def _header_name(key: str) -> str:
    return _json_str(HEADER_PREFIX + key)


def _plain(value: Any, depth: int, maxlevels: int) -> bool:
    """Whether ``repr`` shows ``value`` at ``depth`` exactly as ``saferepr`` would.

    True for built-in JSON types (not subclasses, whose ``repr`` differs)
    nested less deeply than ``saferepr`` elides (``{...}``). String escaping
    and the size limit are checked on the result, in ``args_repr``.
    """
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        if maxlevels and depth >= maxlevels:
            return False
        if kind is dict:
            return (all(type(key) is str for key in value)
                    and all(_plain(item, depth + 1, maxlevels) for item in value.values()))
        return all(_plain(item, depth + 1, maxlevels) for item in value)
    return kind in _PLAIN_SCALARS


def args_repr(payload: Any, maxsize: int, maxlevels: int) -> str:
    """Celery's ``argsrepr`` header of the args ``(payload,)``: ``saferepr`` of them.

    ``saferepr`` costs ~15 µs a job. For plain JSON data that it would neither
    elide nor truncate, and whose strings ``repr`` does not escape or
    double-quote (no backslash or ``"`` in the result), ``repr`` is the same
    string; anything else goes through ``saferepr`` itself.
    """
    if _plain(payload, 1, maxlevels):
        text = f"({payload!r},)"
        # saferepr cuts only once its running length reaches maxsize
        if len(text) < maxsize and "\\" not in text and '"' not in text:
            return text
    return saferepr((payload,), maxsize, maxlevels=maxlevels)


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
        # The declared time limits (seconds): Celery's Request reads them from this
        # header and hands them to the pool. Undeclared ones stay None so that the
        # worker applies the queue type's (``JobTask.attempt_time_limits``). Never
        # ``expires``: Celery would drop an expired message and leave its job waiting;
        # the claim script fails it instead.
        limits = getattr(task, "job_time_limits", (task.time_limit, task.soft_time_limit))
        headers = {
            "lang": "py", "task": task.name, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": list(limits),
            "parent_id": None, "origin": anon_nodename(),
            "ignore_result": bool(task.ignore_result), "replaced_task_nesting": 0,
            "stamped_headers": None, "stamps": {},
        }
        properties = {"reply_to": app.thread_oid, "delivery_mode": 2,
                      "delivery_info": {"exchange": "", "routing_key": queue}}
        # The envelope's constant text around the per-message fields, in the key
        # order (and so the exact text) ``json.dumps`` of the whole envelope gives.
        self._head = ('", "content-encoding": "utf-8", "content-type": "application/json", '
                      f'"headers": {json.dumps(headers)[:-1]}, "id": "')
        self._props = json.dumps(properties)[1:-1]
        self._argsrepr_max = app.amqp.argsrepr_maxsize
        self._maxlevels = app.conf.task_repr_maxlevels

    def broker_key(self, priority: int) -> str:
        """The Redis list of this template's queue at ``priority``."""
        return broker_key(self.app, self.queue, priority)

    def build(self, payload: Any, *, priority: int, job_headers: dict[str, Any]) -> BuiltMessage:
        """One message whose only positional argument is ``payload``."""
        task_id = new_task_id()
        return BuiltMessage(task_id=task_id, broker_key=self.broker_key(priority),
                            body=self.envelope(task_id, payload, priority, job_headers),
                            gen=int(job_headers.get("gen", 1)))

    def envelope(self, task_id: str, payload: Any, priority: int,
                 job_headers: dict[str, Any]) -> str:
        """The JSON message of task ``task_id``, as kombu's Redis transport pushes it."""
        body = binascii.b2a_base64(
            f"[[{json.dumps(payload)}{_BODY_TAIL}".encode(), newline=False).decode()
        argsrepr = args_repr(payload, self._argsrepr_max, self._maxlevels)
        # Flower shows and searches kwargsrepr as the task's kwargs: the job id there
        # finds a job by its id (display only; the task itself gets no kwargs).
        job_id = job_headers.get("job")
        kwargsrepr = "{}" if job_id is None else repr({"job_id": job_id})
        extra = "".join([f", {_header_name(key)}: {_json(value)}"
                         for key, value in job_headers.items()])
        return (f'{{"body": "{body}{self._head}{task_id}", "root_id": "{task_id}", '
                f'"argsrepr": {_json_str(argsrepr)}, "kwargsrepr": {_json_str(kwargsrepr)}'
                f'{extra}}}, '
                f'"properties": {{"correlation_id": "{task_id}", {self._props}, '
                f'"priority": {_json(priority)}, "body_encoding": "base64", '
                f'"delivery_tag": "{new_task_id()}"}}}}')
