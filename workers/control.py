"""Which queues a worker consumes, kept in step with the durable pause flags.

A queue is consumed when the worker was started with it (``-Q``), the queue
is not paused, and the worker itself is not paused. ``sync_consumers`` makes
the consumer match: the bootstep calls it every second (so a worker that
started later, or missed a broadcast while reconnecting, catches up) and the
``jq_sync_consumers`` remote-control command calls it at once. Unlike a
broadcast ``add_consumer``, it never makes a worker consume a queue it was
not started with (DESIGN §4a).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from celery.worker.control import control_command

from queues.store import workers as worker_store

logger = logging.getLogger("queues.worker")


def desired_queues(configured: tuple[str, ...], hostname: str) -> set[str]:
    """The configured queues this worker should consume now (reads Redis)."""
    queue_paused, worker_paused = worker_store.pause_flags(configured, hostname)
    if worker_paused:
        return set()
    return {q for q in configured if not queue_paused[q]}


def apply(consumer: Any, configured: tuple[str, ...], desired: set[str]) -> None:
    """Add or cancel task queues; runs in the consumer's event-loop thread."""
    cset = consumer.task_consumer
    # Never re-add a queue while the consumer is shutting down or restarting.
    if cset is None or consumer.blueprint.state != bootsteps.RUN:
        return
    for queue in configured:
        consuming = cset.consuming_from(queue)
        if queue in desired and not consuming:
            consumer.add_task_queue(queue)
        elif queue not in desired and consuming:
            consumer.cancel_task_queue(queue)


def sync_consumers(consumer: Any, configured: tuple[str, ...], hostname: str) -> set[str]:
    """Schedule the consumer change on its loop; returns the desired queues."""
    desired = desired_queues(configured, hostname)
    consumer.call_soon(apply, consumer, configured, desired)
    return desired


@control_command(args=[("queue", str)], signature="[queue]")
def jq_sync_consumers(state: Any, queue: str = "", **_: Any) -> dict[str, Any]:
    """Re-read the pause flags now (sent by pause/resume of queues and workers)."""
    controller = state.consumer.controller
    configured = getattr(controller, "jq_configured_queues", ())
    if queue and queue not in configured:
        return {"ok": "not serving " + queue}
    desired = sync_consumers(state.consumer, configured, controller.hostname)
    return {"ok": "consuming " + ",".join(sorted(desired))}
