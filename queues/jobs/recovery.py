"""Bringing jobs back when the process that ran them is gone.

- ``recover_lost``: the worker's main process saw its pool child die while
  running a job (SIGKILL, OOM, hard time limit). Called from ``JobRequest``.
- ``recover_stalled``: a job's lock expired because its whole worker or host
  is gone. Any worker serving the queue runs this sweep.

Both give the job a new generation and push a fresh message in one script
(the old message, when the broker redelivers it, is a no-op), or fail it as
``stalled`` once it has stalled more than ``maxStalledCount`` times.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

from queues import store
from queues.exceptions import UnknownJobType
from queues.jobs import producer
from queues.jobs.failures import failed_for_good

logger = logging.getLogger("queues.jobs.recovery")


def _recover(queue: str, job_id: str, *, mode: Literal["stalled", "lost"],
             token: str = "") -> int:
    record = store.read_record(queue, job_id)
    if record is None:
        return 0
    gen = record.gen
    try:
        message = producer.next_message(record)
    except UnknownJobType:
        logger.error("cannot recover %s/%s: job type %s is not loaded in this worker",
                     queue, job_id, record.task)
        return 0
    outcome, failed = store.recover(queue, job_id, mode=mode, token=token, gen=gen,
                                    message=message)
    if outcome and mode == "stalled":  # the dead worker's reservation is now a no-op
        store.drop_reservations(queue, job_id, up_to_gen=gen)
    if outcome == 1:
        logger.warning("job %s/%s %s: returned to waiting", queue, job_id, mode)
    elif outcome == 2 and failed is not None:
        failed_for_good(queue, job_id, failed, how=mode)
    return outcome


def recover_lost(queue: str, job_id: str, token: str) -> int:
    """The pool child running ``job_id`` under ``token`` died."""
    return _recover(queue, job_id, mode="lost", token=token)


def recover_stalled(queue: str) -> int:
    """Recover every job of ``queue`` whose lock expired; returns how many were touched."""
    return sum(1 for job_id in store.stalled_candidates(queue)
               if _recover(queue, job_id, mode="stalled"))


def recover_orphaned_messages(queues: Iterable[str], *, older_than_s: float) -> int:
    """Re-publish waiting jobs whose message a dead worker reserved but never claimed.

    With prefetch off a live worker claims a reserved message within
    milliseconds; one reserved for longer than ``older_than_s`` belongs to a
    worker that died (kombu would restore it only after ``visibility_timeout``).
    A fresh message with a new generation makes the stranded one a no-op.
    """
    served, count = set(queues), 0
    for headers in store.stale_reservations(older_than_s):
        queue, job_id = headers.get("routing_key"), headers.get("jq_job")
        if queue not in served or job_id is None:
            continue
        if hand_over(queue, job_id, gen=int(headers["jq_gen"])):
            store.drop_reservations(queue, job_id, up_to_gen=int(headers["jq_gen"]))
            logger.warning("job %s/%s: message stranded in a dead worker, re-published",
                           queue, job_id)
            count += 1
    return count


# (queue, job id, generation) seen without a message on the last sweep; confirmed on the next.
_suspected: set[tuple[str, str, int]] = set()


def recover_vanished_messages(queues: Iterable[str]) -> int:
    """Re-publish waiting jobs whose message vanished on its way to a worker.

    ``BRPOP`` removes a message from its list before kombu records it as
    reserved; a worker killed in between, or a reply lost with a cut
    connection, strands the job. A job ``store.unseen_waiting`` reports on two
    sweeps in a row (a message in flight is claimed within milliseconds) gets
    a new generation and message.
    """
    from celery import current_app

    from queues.jobs.messages import broker_keys

    seen, count = set(), 0
    for queue in queues:
        for job_id, gen in store.unseen_waiting(queue, broker_keys(current_app, queue)):
            if (queue, job_id, gen) not in _suspected:
                seen.add((queue, job_id, gen))
            elif hand_over(queue, job_id, gen=gen):
                logger.warning("job %s/%s: its message vanished before a worker took it, "
                               "re-published", queue, job_id)
                count += 1
    _suspected.clear()
    _suspected.update(seen)
    return count


def hand_over(queue: str, job_id: str, *, gen: int) -> bool:
    """Give a still-waiting job of generation ``gen`` a fresh message for another worker.

    Used when a paused worker receives a job, and for messages stranded in a
    dead worker. False when the job moved on meanwhile.
    """
    record = store.read_record(queue, job_id)
    if record is None or record.gen != gen:
        return False
    return store.republish(queue, job_id, gen=gen, message=producer.next_message(record))


def hold_back(queue: str, job_id: str, *, gen: int) -> bool:
    """Hold a waiting job the queue's limits refused at claim until the gate has room.

    It keeps its place among the held jobs and gets a new generation, so the message
    the claim refused is a no-op if it is ever delivered again. False when the job
    moved on meanwhile.
    """
    from queues.store import gate

    record = store.read_record(queue, job_id)
    if record is None or record.gen != gen:
        return False
    return gate.hold_back(queue, job_id, gen=gen, message=producer.next_message(record))


def extend_locks(running: Iterable[tuple[str, str, str]]) -> int:
    """Renew the locks of (queue, job id, token) triples this worker runs now."""
    by_queue: dict[str, list[tuple[str, str]]] = {}
    for queue, job_id, token in running:
        by_queue.setdefault(queue, []).append((job_id, token))
    return sum(store.extend_locks(queue, owned) for queue, owned in by_queue.items())
