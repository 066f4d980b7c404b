"""The one exit of a job that failed for good.

Wherever a job reaches ``failed`` for good, the code that moved it there
calls ``failed_for_good`` with the job's final record: it logs one line and
sends ``queues.signals.job_failed`` once, which ``deadletter`` connects to
(this app never imports it, DESIGN §3). The ways a job gets there:

- ``finished``: its last attempt failed, or it raised a non-retryable error
  (a time-out included, soft or hard: ``queues.jobs.task``);
- ``expired``: it waited past ``MAX_JOB_AGE`` or its deadline, seen at claim;
- ``refused``: a message sent around the coordinator broke the payload or id
  rules, so it was never recorded (its final record is made in ``queues.jobs.task``);
- ``stalled`` / ``lost``: its lock expired, or its pool child died, more
  often than ``maxStalledCount`` (``queues.jobs.recovery``);
- ``child_failed``: a parent of a flow whose child failed or was cancelled with
  the default policy ``fail_parent`` (``queues.jobs.flows``), in the same script.
"""

from __future__ import annotations

import json
import logging
from typing import Literal

from queues.signals import job_failed

logger = logging.getLogger("queues.jobs.failures")

How = Literal["finished", "expired", "refused", "stalled", "lost", "child_failed"]
# How each way is logged: level, the line after "job <queue>/<id> ", and the
# final record's fields that fill its %s.
_LINES: dict[How, tuple[int, str, tuple[str, ...]]] = {
    # Celery logs the job's own error with its traceback too: this line is the outcome.
    "finished": (logging.INFO, "failed (%s): %s", ("failed_reason", "error")),
    "expired": (logging.WARNING, "expired before it started", ()),
    "refused": (logging.ERROR, "refused, dead-lettered: an untracked message for %s: %s",
                ("name", "error")),
    "stalled": (logging.ERROR, "stalled too often: failed", ()),
    "lost": (logging.ERROR, "lost too often: failed", ()),
    "child_failed": (logging.WARNING, "failed with its child: %s", ("error",)),
}


def failed_for_good(queue: str, job_id: str, final: dict[str, str], *, how: How,
                    sender: type | None = None) -> None:
    """Log how ``job_id`` failed for good and send ``job_failed`` with its final record.

    A child of a flow can fail its parent in the same script ('fail_parent'); the
    script hands the parents back in the record's ``flow_failed``, and each goes
    out the same way (``how`` "child_failed").
    """
    record = {field: value for field, value in final.items() if field != "flow_failed"}
    level, line, names = _LINES[how]
    logger.log(level, "job %s/%s " + line, queue, job_id, *(record.get(n, "") for n in names))
    job_failed.send(sender=sender, queue=queue, job_id=job_id, record=record)
    failed_parents(final.get("flow_failed", ""), sender=sender)


def failed_parents(flow_failed: str, *, sender: type | None = None) -> None:
    """Send the parents a child's end failed (``flow.lua``'s JSON list) out for good."""
    for queue, job_id, flat in json.loads(flow_failed) if flow_failed else ():
        failed_for_good(queue, job_id, dict(zip(flat[::2], flat[1::2], strict=True)),
                        how="child_failed", sender=sender)
