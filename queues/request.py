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
    def cancel(self, pool: Any, signal: Any = None, emit_retry: bool = True) -> None:
        """Celery kills a running job (cold shutdown): hand it back at once.

        Without this the job stays ``active`` under a dead process until its
        lock expires, and the redelivered message is a no-op meanwhile.
        """
        running = bool(self.time_start) and "jq_job" in self._request_dict
        super().cancel(pool, signal, emit_retry)
        if running:
            self._hand_back("cancelled by Celery")

    def _hand_back(self, why: str) -> None:
        job_id = self._request_dict["jq_job"]
        try:
            if recovery.recover_lost(self.task.job_queue, job_id, self.id):
                logger.warning("job %s/%s %s: handed back to waiting", self.task.job_queue,
                               job_id, why)
        except BackendUnavailable as exc:
            # The lock expires on its own; the stall sweep finishes the job.
            logger.warning("could not hand back %s (%s): %s", job_id, why, exc)

    def on_failure(self, exc_info: Any, send_failed_event: bool = True,
                   return_ok: bool = False) -> Any:
        if self._child_lost(exc_info) and "jq_job" in self._request_dict:
            self._hand_back("lost its pool process")
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
