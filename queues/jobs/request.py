"""The worker-side ``Request`` class of every job task (``JobTask.Request``).

It runs in the worker's main process.

- When a prefork child dies while running a job, Celery (with
  ``task_reject_on_worker_lost``) requeues the message, but the job is still
  ``active`` under the dead child, so that copy would be a no-op and the job
  would wait for its lock to expire. Here the main process hands the job back
  at once with a new generation (DESIGN §4a).
- An attempt killed by its hard time limit is not a lost worker: it is a
  failed attempt (``TimeLimitExceeded``), retried by the job's attempts and
  backoff, failing as ``timeout`` when they are exhausted (DESIGN §8.23).
- The time limits handed to the pool are the message's (declared by ``@job``),
  else the queue type's, else Celery's task defaults.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery.worker.request import Request
from django.db import DatabaseError

from queues import registry
from queues.conf import settings
from queues.exceptions import BackendUnavailable, QueueTypeNotFound
from queues.jobs import recovery

logger = logging.getLogger("queues.jobs.recovery")
Limits = tuple[float | None, float | None]  # (hard, soft) seconds
# queue -> (monotonic time to look again, the queue type's limits)
_queue_type_limits: dict[str, tuple[float, Limits]] = {}


def queue_type_limits(queue: str) -> Limits:
    """The queue type's (hard, soft) limits in seconds, looked up at most once per
    ``REGISTRY_REFRESH_INTERVAL``: this runs per message in the consumer, which must
    not wait on SQL, so during a database outage the last known limits stay."""
    now = time.monotonic()
    cached = _queue_type_limits.get(queue)
    if cached is not None and now < cached[0]:
        return cached[1]
    try:
        spec = registry.get(queue)
        hard, soft = (None if ms is None else ms / 1000
                      for ms in (spec.time_limit_ms, spec.soft_time_limit_ms))
        limits: Limits = (hard, soft)
    except (QueueTypeNotFound, DatabaseError) as exc:
        logger.warning("time limits of queue type %s unavailable (%s): %s", queue,
                       "kept" if cached else "none", exc)
        limits = cached[1] if cached is not None else (None, None)
    _queue_type_limits[queue] = (now + settings.REGISTRY_REFRESH_INTERVAL / 1000, limits)
    return limits


class JobRequest(Request):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sent: Limits = tuple(self.time_limits or (None, None))  # type: ignore[has-type]
        queue_type = queue_type_limits(self.task.job_queue)
        celery = (self.task.time_limit, self.task.soft_time_limit)
        # Celery's pool call reads these (``execute_using_pool``).
        self.time_limits = [a or b or c for a, b, c in zip(sent, queue_type, celery,
                                                            strict=True)]

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
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # unwrap ExceptionWithTraceback
        if "jq_job" in self._request_dict:
            if isinstance(exc, TimeLimitExceeded):
                self._timed_out(exc)
            elif self._child_lost(exc):
                self._hand_back("lost its pool process")
        return super().on_failure(exc_info, send_failed_event, return_ok)

    def _timed_out(self, exc: TimeLimitExceeded) -> None:
        """The pool kills the child running this attempt: the attempt failed."""
        from queues.jobs.task import fail_attempt

        job_id = self._request_dict["jq_job"]
        tb = "".join(traceback.format_exception(exc)) or repr(exc)
        try:
            retried = fail_attempt(self.task, job_id, token=self.id,
                                   worker=self.hostname or "", exc=exc, tb=tb)
        except BackendUnavailable as err:
            # The lock expires on its own; the stall sweep finishes the job.
            logger.warning("could not record the time-out of %s: %s", job_id, err)
            return
        logger.warning("job %s/%s exceeded its hard time limit: %s", self.task.job_queue,
                       job_id, "retried" if retried is not None else "failed")

    def _child_lost(self, exc: BaseException | None) -> bool:
        if isinstance(exc, WorkerLostError):
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
