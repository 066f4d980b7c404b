"""Every exception the coordinator raises, in one tree.

::

    CoordinatorError
    ├── ConfigurationError
    ├── BackendUnavailable                 (wraps redis.ConnectionError)
    │   └── NotReplicated                  (ENQUEUE_DURABILITY=replica, no replica in time)
    ├── QueueError
    │   ├── QueueTypeNotFound
    │   ├── QueueTypeAlreadyRegistered
    │   └── QueueNotEmpty
    ├── JobError
    │   ├── JobValidationError
    │   │   ├── PayloadTooLarge
    │   │   ├── UnknownJobType
    │   │   └── InvalidCronError
    │   ├── JobNotFound
    │   ├── JobFailed
    │   ├── RateLimited
    │   ├── InvalidJobState
    │   ├── RetryableJobError              (job code: transient, always retried)
    │   └── NonRetryableError              (job code: never retried)
    │       ├── ValidationError
    │       ├── AuthenticationError
    │       ├── AuthorizationError
    │       ├── NotFoundError
    │       └── BadRequestError
    ├── WorkerNotFound
    └── DeadLetterError
        ├── DeadLetterNotFound
        └── NotRequeueable

Callers catch ``CoordinatorError`` or a documented subclass. Each class's
docstring says when it is raised and is its default message.

There is no ``QueuePaused``: nothing needs a running queue. Enqueueing to a
paused queue is accepted (the job waits, parked at claim, until
``resume_queue``), and pause/resume are idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class CoordinatorError(Exception):
    """A Job Queue Coordinator operation failed."""

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.details = details
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(CoordinatorError):
    """The coordinator's settings or a job declaration are invalid."""


class BackendUnavailable(CoordinatorError):
    """Redis (the job store and broker) could not be reached."""


class NotReplicated(BackendUnavailable):
    """ENQUEUE_DURABILITY=replica and no replica confirmed the enqueue in time."""

    def __init__(self, timeout_ms: int) -> None:
        super().__init__(
            f"no replica confirmed the enqueue within {timeout_ms} ms "
            "(ENQUEUE_DURABILITY=replica): the job is recorded on the primary and may not "
            "survive a failover; enqueueing it again with the same job_id is safe")


class QueueError(CoordinatorError):
    """An operation on a queue type failed."""


class QueueTypeNotFound(QueueError):
    """No queue type is registered under this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Queue type {name!r} is not registered", queue=name)


class QueueTypeAlreadyRegistered(QueueError):
    """A queue type with this name already exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Queue type {name!r} is already registered", queue=name)


class QueueNotEmpty(QueueError):
    """The queue still has jobs; pass force=True to remove it anyway."""

    def __init__(self, name: str, counts: dict[str, int]) -> None:
        listed = ", ".join(f"{n} {state}" for state, n in counts.items())
        super().__init__(f"Queue {name!r} still has jobs ({listed}); use force=True to remove it",
                         queue=name, counts=counts)


class JobError(CoordinatorError):
    """An operation on a job failed."""


class JobValidationError(JobError):
    """A job's payload or options are invalid; nothing was recorded or published."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        prefix = f"{field}: " if field else ""
        super().__init__(f"{prefix}{message}", field=field)


class PayloadTooLarge(JobValidationError):
    """The serialised payload is larger than MAX_JOB_DATA_SIZE."""

    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(f"payload is {size} bytes, the limit is {limit} bytes", field="data")


class UnknownJobType(JobValidationError):
    """No ``@job`` declares this job name for this queue, or the queue type does not list it."""

    def __init__(self, queue: str, name: str, allowed: Iterable[str] | None = None) -> None:
        if allowed is None:
            message = f"no job named {name!r} is declared for queue {queue!r}"
        else:
            message = (f"queue {queue!r} accepts only the job types {sorted(allowed)}; "
                       f"not {name!r}")
        super().__init__(message, field="name")


class InvalidCronError(JobValidationError):
    """A cron expression of a recurring job is invalid (the field is named)."""


class JobNotFound(JobError):
    """No job with this id exists in this queue."""

    def __init__(self, queue: str, job_id: str) -> None:
        super().__init__(f"Job {job_id!r} not found in queue {queue!r}", queue=queue, job_id=job_id)


class JobFailed(JobError):
    """The job ended failed or cancelled (raised by ``JobHandle.get``)."""


class RateLimited(JobError):
    """The client enqueued more than MAX_JOBS_PER_MINUTE jobs this minute; nothing was recorded."""

    def __init__(self, client_id: str, limit: int) -> None:
        super().__init__(f"client {client_id!r} may enqueue {limit} jobs per minute; try again "
                         "in the next minute", client_id=client_id, limit=limit)


class InvalidJobState(JobError):
    """The job is in a state that does not allow the operation."""


class RetryableJobError(JobError):
    """Raised by job code for a transient failure that should be retried."""


class NonRetryableError(JobError):
    """Raised by job code for a failure that retrying cannot fix; fails the job at once."""


class ValidationError(NonRetryableError):
    """The job's input is invalid."""


class AuthenticationError(NonRetryableError):
    """The job could not authenticate against a dependency."""


class AuthorizationError(NonRetryableError):
    """The job is not allowed to do what it tried."""


class NotFoundError(NonRetryableError):
    """Something the job needs does not exist."""


class BadRequestError(NonRetryableError):
    """A dependency rejected the job's request as malformed."""


class WorkerNotFound(CoordinatorError):
    """No worker with this id (hostname) has reported."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(f"Worker {worker_id!r} not found", worker=worker_id)


class DeadLetterError(CoordinatorError):
    """An operation on a dead letter failed."""


class DeadLetterNotFound(DeadLetterError):
    """No dead letter matches."""


class NotRequeueable(DeadLetterError):
    """The dead letter was already requeued or archived."""
