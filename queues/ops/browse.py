"""Reading a queue's jobs a page at a time, per state, for the dashboard.

Each page is a range by rank of one index (``queues.store.queue_state.index_page``)
or, for waiting jobs, of the broker lists in the order workers take them
(``queues.store.broker.next_to_run``), plus one pipeline for the page's records:
the cost does not grow with the queue. A search walks the same order in chunks and
stops after ``SEARCH_BUDGET`` jobs, saying how far it looked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from queues import registry, store
from queues.exceptions import JobValidationError
from queues.jobs.messages import broker_keys
from queues.store import broker, queue_state

PER_PAGE = 50
SEARCH_BUDGET = 5000  # jobs a search reads at most (it says how far it looked)
SEARCH_CHUNK = 500
# per state: the order shown, and what the index's score means there
ORDER = {
    "waiting": "the order workers take them: priority 0 first, oldest first within one",
    "waiting-children": "parents of flows waiting for their children, oldest first",
    "delayed": "due time, soonest first",
    "limited": "held by the queue's limits, in the order they go out: priority 0 first, "
               "oldest first within one (groups take turns)",
    "active": "lock deadline, the longest running first",
    "paused": "the order they run in once the queue resumes",
    "completed": "newest first",
    "failed": "newest first",
    "cancelled": "newest first",
}
NEWEST_FIRST = {"completed", "failed", "cancelled"}
SHOWN = ("name", "state", "gen", "priority", "created_at", "runnable_at", "attempts_made",
         "max_attempts", "worker", "processed_at", "finished_at", "error_type", "error")


def check_tab(queue: str, state: str) -> None:
    """``queue`` is registered and ``state`` is one of its tabs.

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
        JobValidationError: an unknown ``state``.
    """
    registry.get(queue)
    if state not in ORDER:
        raise JobValidationError(f"unknown state {state!r}; one of {', '.join(ORDER)}",
                                 field="state")


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
    check_tab(queue, state)
    if page < 1:
        raise JobValidationError("pages count from 1", field="page")
    total, rows = _rows(queue, state, (page - 1) * per_page, per_page, with_data=False)
    return JobsPage(queue, state, ORDER[state], page, max(1, -(-total // per_page)), total,
                    [row for row, _data in rows])


@dataclass(frozen=True)
class Search:
    """The jobs of one state that matched, from a bounded walk in the tab's order."""

    rows: list[JobRow]
    looked_at: int  # jobs read
    total: int  # jobs in the state
    exact: JobRow | None  # the job whose id is the search text, in whatever state


def search_jobs(queue: str, state: str, *, text: str = "", job_type: str = "",
                budget: int | None = None, limit: int = PER_PAGE) -> Search:
    """Jobs of ``queue`` in ``state`` whose id starts with ``text`` or whose payload
    contains it, and of type ``job_type`` when given; at most ``limit`` of them, looking
    at no more than ``budget`` (``SEARCH_BUDGET``) jobs in the tab's order
    (``looked_at`` says how far).

    Raises:
        QueueTypeNotFound, JobValidationError (unknown state), BackendUnavailable.
    """
    exact = None
    found: list[JobRow] = []
    looked_at, total = 0, 0
    for chunk in walk(queue, state, text=text, job_type=job_type,
                      budget=SEARCH_BUDGET if budget is None else budget):
        matched, looked_at, total = chunk
        found += matched[:limit - len(found)]
        if len(found) >= limit:
            break
    if text:
        [values] = store.fields_of_many(queue, [text], *SHOWN)
        if values[SHOWN.index("state")] is not None:
            exact = _row(text, dict(zip(SHOWN, values, strict=True)))
    return Search(found, looked_at, total, exact)


def walk(queue: str, state: str, *, text: str = "", job_type: str = "",
         budget: int | None = None) -> Iterator[tuple[list[JobRow], int, int]]:
    """The jobs of ``queue`` in ``state`` that match ``text`` (id prefix or payload
    text) and ``job_type``, in the tab's order, a chunk at a time: (the chunk's
    matches, jobs read so far, jobs in the state). Reads at most ``budget`` jobs
    (None: all of them).

    The walk goes by position, so a job that changes state while it runs may be
    missed or met twice.

    Raises:
        QueueTypeNotFound, JobValidationError (unknown state), BackendUnavailable.
    """
    check_tab(queue, state)
    looked_at = 0
    while budget is None or looked_at < budget:
        count = SEARCH_CHUNK if budget is None else min(SEARCH_CHUNK, budget - looked_at)
        total, rows = _rows(queue, state, looked_at, count, with_data=bool(text))
        yield ([row for row, data in rows
                if (not job_type or row.name == job_type)
                and (not text or row.job_id.startswith(text) or text in data)],
               min(looked_at + count, total), total)
        looked_at += count
        if looked_at >= total:
            return


def _rows(queue: str, state: str, start: int, count: int, *, with_data: bool
          ) -> tuple[int, list[tuple[JobRow, str]]]:
    """(jobs in ``state``, the rows from position ``start``, each with its payload's JSON
    when ``with_data``, else "": a payload may be a megabyte, a page does not read it)."""
    if state == "waiting":
        from celery import current_app

        total, messages = broker.next_to_run(broker_keys(current_app, queue), start, count)
        ids = [job_id for job_id, _gen, _priority in messages]
        gens: list[int | None] = [gen for _job_id, gen, _priority in messages]
    else:
        total, pairs = queue_state.index_page(queue, state, start, count,
                                              newest_first=state in NEWEST_FIRST)
        ids, gens = [job_id for job_id, _score in pairs], [None] * len(pairs)
    names = (*SHOWN, "data") if with_data else SHOWN
    rows = []
    for job_id, gen, values in zip(ids, gens, store.fields_of_many(queue, ids, *names),
                                   strict=True):
        f = dict(zip(names, values, strict=True))
        if f["state"] is None:
            continue  # trimmed or removed since the index was read
        if gen is not None and (f["state"] != "waiting" or str(gen) != f["gen"]):
            continue  # a message the job no longer answers to
        rows.append((_row(job_id, f), f.get("data") or ""))
    return total, rows


def _row(job_id: str, f: dict[str, str | None]) -> JobRow:
    def ms(name: str) -> int:
        return int(f[name] or 0)

    error = f"{f['error_type']}: {f['error']}" if f["error_type"] else ""
    return JobRow(job_id=job_id, name=f["name"] or "", state=f["state"] or "",
                  priority=ms("priority"), created_at=ms("created_at"),
                  due_at=ms("runnable_at"), attempts=ms("attempts_made"),
                  max_attempts=ms("max_attempts"), worker=f["worker"] or "",
                  started_at=ms("processed_at"), finished_at=ms("finished_at"), error=error)
