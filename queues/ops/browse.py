"""Reading a queue's jobs a page at a time, per state, for the dashboard.

Each page is a range by rank of one index (``queues.store.queue_state.index_page``)
or, for waiting jobs, of the broker lists in the order workers take them
(``queues.store.broker.next_to_run``), plus one pipeline for the page's records:
the cost does not grow with the queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from queues import registry, store
from queues.exceptions import JobValidationError
from queues.jobs.messages import broker_keys
from queues.store import broker, queue_state

PER_PAGE = 50
# per state: the order shown, and what the index's score means there
ORDER = {
    "waiting": "the order workers take them: priority 0 first, oldest first within one",
    "delayed": "due time, soonest first",
    "active": "lock deadline, the longest running first",
    "paused": "the order they run in once the queue resumes",
    "completed": "newest first",
    "failed": "newest first",
    "cancelled": "newest first",
}
NEWEST_FIRST = {"completed", "failed", "cancelled"}
SHOWN = ("name", "state", "gen", "priority", "created_at", "runnable_at", "attempts_made",
         "max_attempts", "worker", "processed_at", "finished_at", "error_type", "error")


@dataclass(frozen=True)
class JobRow:
    """One job on a page (times in ms since the epoch, 0 when not set)."""

    job_id: str
    name: str
    state: str
    priority: int
    created_at: int
    due_at: int  # delayed: when it becomes runnable
    attempts: int
    max_attempts: int
    worker: str
    started_at: int
    finished_at: int
    error: str  # "<type>: <message>" of the last failure, "" when none


@dataclass(frozen=True)
class JobsPage:
    queue: str
    state: str
    order: str
    page: int  # from 1
    pages: int
    total: int
    rows: list[JobRow]


def jobs_page(queue: str, state: str, page: int = 1, *, per_page: int = PER_PAGE) -> JobsPage:
    """Page ``page`` of the jobs of ``queue`` in ``state``.

    A waiting job whose message was superseded (a priority change) is listed once,
    under its current message.

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
        JobValidationError: an unknown ``state`` or a page below 1.
        BackendUnavailable: Redis is unreachable.
    """
    registry.get(queue)
    if state not in ORDER:
        raise JobValidationError(f"unknown state {state!r}; one of {', '.join(ORDER)}",
                                 field="state")
    if page < 1:
        raise JobValidationError("pages count from 1", field="page")
    start = (page - 1) * per_page
    if state == "waiting":
        from celery import current_app

        total, messages = broker.next_to_run(broker_keys(current_app, queue), start, per_page)
        ids = [job_id for job_id, _gen, _priority in messages]
        gens: list[int | None] = [gen for _job_id, gen, _priority in messages]
    else:
        total, pairs = queue_state.index_page(queue, state, start, per_page,
                                              newest_first=state in NEWEST_FIRST)
        ids, gens = [job_id for job_id, _score in pairs], [None] * len(pairs)
    records = store.fields_of_many(queue, ids, *SHOWN)
    rows = []
    for job_id, gen, values in zip(ids, gens, records, strict=True):
        f = dict(zip(SHOWN, values, strict=True))
        if f["state"] is None:
            continue  # trimmed or removed since the index was read
        if gen is not None and (f["state"] != "waiting" or str(gen) != f["gen"]):
            continue  # a message the job no longer answers to
        rows.append(_row(job_id, f))
    return JobsPage(queue, state, ORDER[state], page, max(1, -(-total // per_page)), total, rows)


def _row(job_id: str, f: dict[str, str | None]) -> JobRow:
    def ms(name: str) -> int:
        return int(f[name] or 0)

    error = f"{f['error_type']}: {f['error']}" if f["error_type"] else ""
    return JobRow(job_id=job_id, name=f["name"] or "", state=f["state"] or "",
                  priority=ms("priority"), created_at=ms("created_at"),
                  due_at=ms("runnable_at"), attempts=ms("attempts_made"),
                  max_attempts=ms("max_attempts"), worker=f["worker"] or "",
                  started_at=ms("processed_at"), finished_at=ms("finished_at"), error=error)
