"""What a running job sees of itself: ``ctx.job_id``, ``ctx.progress(n)``, ``ctx.log(msg)``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from queues import store
from queues.exceptions import JobValidationError

logger = logging.getLogger("queues.jobs")
LOG_LEVELS = ("debug", "info", "warn", "error")


@dataclass
class JobContext:
    """The context passed to a job function as its second argument.

    ``trace_id`` and ``client_id`` are the job's (DESIGN §8.15), carried in
    the message headers ``jq_trace``/``jq_client``; ``client_id`` is None for
    a job enqueued without one (over HTTP it is the token's ``sub``).

    A context built for a direct call (the function called in-process, not
    from a message) has ``tracked=False``: progress and logs go to the Python
    logger only.
    """

    job_id: str
    queue: str
    name: str
    attempt: int = 1
    max_attempts: int = 1
    trace_id: str | None = None
    client_id: str | None = None
    tracked: bool = True

    @property
    def cancelled(self) -> bool:
        """True once ``cancel_job`` was called on this running job.

        Cancellation of a running job is cooperative: the job checks this
        between steps and returns early; nothing interrupts it.
        """
        if not self.tracked:
            return False
        return store.fields(self.queue, self.job_id, "cancel_requested")[0] == "1"

    def progress(self, percent: int | float) -> None:
        """Record progress, 0 to 100.

        Raises:
            JobValidationError: when ``percent`` is outside 0..100.
        """
        if not 0 <= percent <= 100:
            raise JobValidationError(f"progress must be 0..100, got {percent}", field="progress")
        if self.tracked:
            store.set_progress(self.queue, self.job_id, int(percent))

    def log(self, message: str, *, level: str = "info", **metadata: Any) -> None:
        """Append a line to the job's log (seed ``JobLogEntry``)."""
        if level not in LOG_LEVELS:
            raise JobValidationError(f"level must be one of {LOG_LEVELS}", field="level")
        logger.log(
            logging.WARNING if level == "warn" else getattr(logging, level.upper()),
            "%s", message, extra={"queue": self.queue, "job_id": self.job_id},
        )
        if self.tracked:
            entry = {"timestamp": store.now_ms(), "level": level, "message": message}
            if metadata:
                entry["metadata"] = metadata
            store.append_log(self.queue, self.job_id, entry)

    def children_results(self) -> dict[str, Any]:
        """The results of this job's children that completed, by child job id.

        For a parent of a flow (``queues.jobs.flows.enqueue_flow``), which runs once
        every child ended; empty for any other job.
        """
        if not self.tracked:
            return {}
        from queues.store import flows

        return flows.results(self.queue, self.job_id)

    def children_failures(self) -> dict[str, dict[str, str]]:
        """The children that failed or were cancelled with ``on_failure="ignore"``, by
        child job id: ``{"state": "failed" | "cancelled", "error_type": ..., "error": ...}``."""
        if not self.tracked:
            return {}
        from queues.store import flows

        return flows.failures(self.queue, self.job_id)
