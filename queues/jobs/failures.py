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
  often than ``maxStalledCount`` (``queues.jobs.recovery``).
"""

from __future__ import annotations

import logging
from typing import Literal

from queues.signals import job_failed

logger = logging.getLogger("queues.jobs.failures")

How = Literal["finished", "expired", "refused", "stalled", "lost"]
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
}


def failed_for_good(queue: str, job_id: str, final: dict[str, str], *, how: How,
                    sender: type | None = None) -> None:
    """Log how ``job_id`` failed for good and send ``job_failed`` with its final record."""
    level, line, names = _LINES[how]
    logger.log(level, "job %s/%s " + line, queue, job_id, *(final.get(n, "") for n in names))
    job_failed.send(sender=sender, queue=queue, job_id=job_id, record=final)
