"""The worker-side ``Request`` class of every job task (``JobTask.Request``).

It runs in the worker's main process. When a prefork child dies while running
a job, Celery (with ``task_reject_on_worker_lost``) requeues the message, but
the job is still ``active`` under the dead child, so that copy would be a
no-op and the job would wait for its lock to expire. Here the main process
hands the job back at once with a new generation (DESIGN §4a).
"""

from __future__ import annotations

import logging
from typing import Any

from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery.worker.request import Request

from queues import recovery
from queues.exceptions import BackendUnavailable

logger = logging.getLogger("queues.recovery")


class JobRequest(Request):  # type: ignore[misc]
    def on_failure(self, exc_info: Any, send_failed_event: bool = True,
                   return_ok: bool = False) -> Any:
        if self._child_lost(exc_info):
            job_id = self._request_dict.get("jq_job")
            if job_id is not None:
                try:
                    recovery.recover_lost(self.task.job_queue, job_id, self.id)
                except BackendUnavailable as exc:
                    # The lock expires on its own; the stall sweep finishes the job.
                    logger.warning("could not recover %s after a lost child: %s", job_id, exc)
        return super().on_failure(exc_info, send_failed_event, return_ok)

    def _child_lost(self, exc_info: Any) -> bool:
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # unwrap ExceptionWithTraceback
        if isinstance(exc, (WorkerLostError, TimeLimitExceeded)):
            return True
        # billiard >= 4.3 reports a dead child this way, unless we killed it.
        return isinstance(exc, (SystemExit, KeyboardInterrupt)) and not (
            self._already_cancelled or self._already_revoked)


def running_jobs() -> list[tuple[str, str, str]]:
    """(queue, job id, token) of the jobs this worker process runs right now."""
    from celery.worker import state

    for _ in range(5):
        try:
            requests = list(state.active_requests)
            break
        except RuntimeError:  # the set changed while we copied it; try again
            continue
    else:
        return []
    return [(req.task.job_queue, req._request_dict["jq_job"], req.id) for req in requests
            if isinstance(req, JobRequest) and "jq_job" in req._request_dict]
