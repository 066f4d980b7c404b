"""The Celery task base of every ``@job``, worker side: claim-on-start, run, finish.

- ``apply_async`` (and so ``.delay``) is the producer side, inherited from
  ``queues.jobs.producer.JobDeclaration``: the payload is validated, recorded in
  Redis and published in one Lua call.
- ``before_start`` claims the job atomically; a message whose job is not
  claimable (already active or finished, cancelled, superseded) raises
  ``Ignore``: Celery acks it and records nothing (DESIGN §4a).
- ``__call__`` runs the job function with its payload and a ``JobContext``,
  then records the result or the failure through the finish script.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.exceptions import Ignore, Retry

from queues import store
from queues.exceptions import BackendUnavailable, JobValidationError, QueueTypeNotFound
from queues.jobs import producer, recovery, retry
from queues.jobs.context import JobContext
from queues.jobs.failures import failed_for_good
from queues.options import Backoff
from queues.store import gate

logger = logging.getLogger("queues.jobs")


class JobTask(producer.JobDeclaration):
    """Base class of the tasks that ``queues.jobs.job`` creates: the worker side."""

    typing = False
    ignore_result = True
    Request = "queues.jobs.request:JobRequest"

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        req = self.request
        job_id = getattr(req, "jq_job", None)
        if job_id is None:
            self._adopt(task_id, args, kwargs)
        claim = store.claim(self.job_queue, job_id, gen=req.jq_gen, token=task_id,
                            worker=req.hostname or "")
        if claim.expired_record is not None:
            failed_for_good(self.job_queue, job_id, claim.expired_record, how="expired",
                            sender=type(self))
        if claim.reason == "worker-paused":
            recovery.hand_over(self.job_queue, job_id, gen=int(req.jq_gen))
        elif claim.reason in gate.REASONS:  # the queue's limits: held until there is room
            recovery.hold_back(self.job_queue, job_id, gen=int(req.jq_gen))
        if not claim.claimed:
            logger.info("job %s/%s not claimable (%s): message dropped",
                        self.job_queue, job_id, claim.reason)
            raise Ignore()
        req.jq_token, req.jq_attempt, req.jq_max_attempts = (
            task_id, claim.attempt, claim.max_attempts)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        req = self.request
        token = getattr(req, "jq_token", None)
        payload = producer.payload_from_call(args, kwargs)
        if token is None:  # called directly, in-process: run untracked
            ctx = JobContext(f"direct-{uuid.uuid4().hex}", self.job_queue, self.job_name,
                             tracked=False)
            return self.run(self._as_input(self.validate_payload(payload)), ctx)
        ctx = JobContext(
            req.jq_job, self.job_queue, self.job_name, attempt=req.jq_attempt,
            max_attempts=req.jq_max_attempts, trace_id=getattr(req, "jq_trace", None),
            client_id=getattr(req, "jq_client", None),
        )
        try:
            result = self.run(self._as_input(payload), ctx)
            encoded = json.dumps(result)
        except Exception as exc:
            tb = traceback.format_exc()
            delay_ms = when_redis_answers(self.job_queue, functools.partial(
                fail_attempt, self, ctx.job_id, token=token, worker=req.hostname or "",
                exc=exc, tb=tb))
            if delay_ms is not None:
                raise Retry(exc=exc, when=delay_ms / 1000) from exc
            raise
        if not when_redis_answers(self.job_queue, lambda: store.complete(
                self.job_queue, ctx.job_id, token=token, worker=req.hostname or "",
                result=encoded)):
            logger.warning("job %s/%s finished after losing its lock; result not recorded",
                           self.job_queue, ctx.job_id)
        return result

    def _as_input(self, payload: Any) -> Any:
        return self.schema.model_validate(payload) if self.schema is not None else payload

    def _adopt(self, task_id: str, args: Any, kwargs: Any) -> NoReturn:
        """A message sent without the coordinator (``send_task``): record it as a job.

        Its payload and id obey the same rules as ``.delay()``; a message that
        breaks them can never be recorded, so it is dropped with an error line.
        """
        try:
            submitted = producer.submit(self, [producer.payload_from_call(args, kwargs)],
                                        {"job_id": task_id})
        except JobValidationError as exc:
            failed_for_good(self.job_queue, task_id,
                            _refused_record(self, task_id, (args, kwargs), exc),
                            how="refused", sender=type(self))
            raise Ignore() from None
        logger.info("adopted untracked message %s as job %s/%s", task_id, self.job_queue,
                    submitted[0].job_id)
        raise Ignore()


_T = TypeVar("_T")


def when_redis_answers(queue: str, record: Callable[[], _T]) -> _T:
    """Store an attempt's outcome, waiting while Redis is unreachable.

    A job that ran must not run again only because Redis restarted as it
    finished. The wait lasts up to the queue's lock time (its
    ``stalledInterval``): the job's lock is renewed once Redis is back, and
    after that time another worker may count the job as stalled anyway.

    Raises:
        BackendUnavailable: Redis did not answer within that time.
    """
    try:
        return record()
    except BackendUnavailable:
        pass
    give_up, pause = time.monotonic() + _lock_seconds(queue), 0.05
    while True:
        logger.info("Redis unreachable while recording an outcome of a %s job; "
                    "retrying in %.2f s", queue, pause)
        time.sleep(pause)
        try:
            return record()
        except BackendUnavailable:
            if time.monotonic() + pause > give_up:
                raise
        pause = min(2 * pause, 1.0)


def _lock_seconds(queue: str) -> float:
    from django.db import DatabaseError

    from queues import registry
    from queues.conf import settings

    try:
        return registry.get(queue).stalled_interval_ms / 1000
    except (DatabaseError, QueueTypeNotFound):  # the database may be down too
        return settings.WORKER_STALLED_INTERVAL / 1000


def fail_attempt(task: JobTask, job_id: str, *, token: str, worker: str,
                 exc: BaseException, tb: str) -> int | None:
    """End a failed attempt: back through the delayed set, or the job fails for good.

    Runs in the pool child for an error the job raised (a soft time limit
    included), and in the worker's main process for an attempt its hard time
    limit killed (DESIGN §8.23). Returns the retry delay in ms when retried,
    else None (failed, or ``token`` no longer owns the job).

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    record = store.read_record(task.job_queue, job_id)
    if record is None:  # trimmed or destroyed meanwhile: nothing owns it any more
        return None
    backoff = Backoff.model_validate(record.options.get("backoff", {}))
    decision = retry.decide(exc, attempt=record.attempts_made,
                            max_attempts=record.max_attempts, backoff=backoff,
                            dont_retry=task.dont_retry)
    if decision is None:
        _record_failure(task, job_id, token=token, worker=worker, exc=exc, tb=tb)
        return None
    # Owned by ``token``, the job is at the generation of the message it runs
    # (the claim checked it), so this is the generation after that one.
    message = producer.next_message(record)
    if store.retry(task.job_queue, job_id, token=token, due=store.now_ms() + decision.delay_ms,
                   message=message, error=(type(exc).__name__, error_text(exc))):
        return decision.delay_ms
    return None


def error_text(exc: BaseException) -> str:
    """The error message recorded for ``exc`` (billiard's time-limit errors show only args)."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return "the attempt exceeded its soft time limit"
    if isinstance(exc, TimeLimitExceeded):
        limit = f" ({exc.args[0]:g} s)" if exc.args and isinstance(exc.args[0], float | int) else ""
        return f"the attempt exceeded its hard time limit{limit} and was killed"
    return str(exc) or type(exc).__name__


def _record_failure(task: JobTask, job_id: str, *, token: str, worker: str,
                    exc: BaseException, tb: str) -> None:
    timed_out = isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded)
    fields = {
        "error": error_text(exc), "error_type": type(exc).__name__, "traceback": tb,
        "failed_reason": "timeout" if timed_out else retry.failure_reason(exc, task.dont_retry),
    }
    record = store.fail(task.job_queue, job_id, token=token, worker=worker, fields=fields)
    if record is not None:
        failed_for_good(task.job_queue, job_id, record, how="finished", sender=type(task))


def _refused_record(task: JobTask, task_id: str, call: tuple[Any, Any],
                    exc: JobValidationError) -> dict[str, str]:
    """The final record of a message refused at adoption, for its dead letter.

    Its payload broke the rules, so the row's payload is the start of the
    call's text (``repr``, a JSON string), not a job payload to requeue.
    """
    return {
        "id": task_id, "name": task.job_name, "queue": task.job_queue, "task": task.name,
        "data": json.dumps(f"{call!r:.2000}"), "opts": "{}",
        "error_type": type(exc).__name__, "error": str(exc),
        "traceback": "refused when the worker adopted a message sent around the coordinator",
        "attempts_made": "0", "failed_reason": "non_retryable_error",
        "finished_at": str(store.now_ms()),
    }

