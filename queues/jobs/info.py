"""Reading jobs back: ``JobInfo`` (seed ``JobState``) and the ``JobHandle`` that enqueue returns."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from queues import store
from queues.exceptions import JobFailed, JobNotFound

TERMINAL_STATES = frozenset({"completed", "failed", "cancelled"})


def _time(raw: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(raw) / 1000, tz=UTC) if raw else None


@dataclass(frozen=True)
class JobInfo:
    """A job's state as recorded in Redis (seed §4.2 ``JobState``)."""

    id: str
    queue: str
    name: str
    state: str
    data: Any
    progress: int
    attempts: int
    max_attempts: int
    priority: int
    created_at: datetime | None
    processed_at: datetime | None
    finished_at: datetime | None
    run_at: datetime | None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    failed_reason: str | None = None
    trace_id: str | None = None
    client_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)
    traceback: str | None = None  # of the last failed attempt
    worker: str | None = None  # the hostname of the worker that claimed it last
    # its failed attempts, oldest first (the last 10): attempt, worker, started_at and
    # failed_at (ms since the epoch), error_type, error
    attempt_log: list[dict[str, Any]] = field(default_factory=list)
    group: str | None = None  # its group for the queue's per-group limits
    parent: tuple[str, str] | None = None  # (queue, id) of its parent in a flow
    on_failure: str | None = None  # what its failure does to that parent

    @property
    def completed_at(self) -> datetime | None:
        return self.finished_at if self.state == "completed" else None

    @property
    def failed_at(self) -> datetime | None:
        return self.finished_at if self.state == "failed" else None

    @classmethod
    def from_record(cls, rec: dict[str, str], logs: list[dict[str, Any]]) -> JobInfo:
        return cls(
            id=rec["id"], queue=rec["queue"], name=rec["name"], state=rec["state"],
            data=json.loads(rec["data"]), progress=int(rec.get("progress", 0)),
            attempts=int(rec.get("attempts_made", 0)), max_attempts=int(rec["max_attempts"]),
            priority=int(rec.get("priority", 0)), created_at=_time(rec.get("created_at")),
            processed_at=_time(rec.get("processed_at")),
            finished_at=_time(rec.get("finished_at")), run_at=_time(rec.get("runnable_at")),
            result=json.loads(rec["result"]) if "result" in rec else None,
            error=rec.get("error"), error_type=rec.get("error_type"),
            failed_reason=rec.get("failed_reason"), trace_id=rec.get("trace_id") or None,
            client_id=rec.get("client_id") or None, options=json.loads(rec.get("opts", "{}")),
            logs=logs, traceback=rec.get("traceback"), worker=rec.get("worker") or None,
            attempt_log=json.loads(rec["attempt_log"]) if rec.get("attempt_log") else [],
            group=rec.get("group") or None,
            parent=(rec["parent_queue"], rec["parent_id"]) if rec.get("parent_id") else None,
            on_failure=rec.get("parent_policy") or None,
        )


def get_job(queue: str, job_id: str) -> JobInfo:
    """The recorded state of one job.

    Raises:
        JobNotFound: no such job (never enqueued, or trimmed by retention).
        BackendUnavailable: Redis is unreachable.
    """
    found = store.read_job(queue, job_id)
    if found is None:
        raise JobNotFound(queue, job_id)
    record, logs = found
    if record.get("state") == "limited":  # held by the queue's limits: say which
        from queues.store import gate

        record = {**record, "state": gate.holding_reason(queue, record.get("group"))}
    return JobInfo.from_record(record, logs)


@dataclass(frozen=True)
class JobHandle:
    """What ``.delay()`` and ``enqueue`` return; ``created`` is False for a de-duplicated id."""

    queue: str
    id: str
    created: bool = True

    @property
    def job_id(self) -> str:
        return self.id

    def info(self) -> JobInfo:
        return get_job(self.queue, self.id)

    @property
    def state(self) -> str:
        return self.info().state

    def wait(self, timeout: float = 10.0, interval: float = 0.02) -> JobInfo:
        """Poll until the job reaches a terminal state.

        Raises:
            TimeoutError: it did not finish within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            info = self.info()
            if info.state in TERMINAL_STATES:
                return info
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {self.queue}/{self.id} still {info.state} after {timeout}s")
            time.sleep(interval)

    def get(self, timeout: float = 10.0) -> Any:
        """The job's result once completed, like Celery's ``AsyncResult.get``.

        Raises:
            JobFailed: the job failed or was cancelled.
            TimeoutError: it did not finish within ``timeout`` seconds.
        """
        info = self.wait(timeout)
        if info.state != "completed":
            raise JobFailed(f"job {self.queue}/{self.id} {info.state}: {info.error}")
        return info.result
