"""A queue type's ``concurrency``: the pool size of a worker serving only that queue.

Precedence, highest first: ``-c`` (or ``CELERY_WORKER_CONCURRENCY``) given to
``celery worker``; the ``concurrency`` of the queue type, when the worker serves
that one queue; ``DEFAULT_WORKER_CONCURRENCY`` (Celery's ``worker_concurrency``).

Celery's CLI replaces an absent ``-c`` by ``worker_concurrency`` before the
worker sees it, so the only record of whether ``-c`` was given is click's
parameter source. The ``worker_init`` signal is the hook: the worker has its
queues and concurrency then, and has not built its pool yet. A worker created
in code (``app.Worker(...)``, ``celery.contrib.testing``) runs outside click
and keeps the concurrency it was given.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from click.core import ParameterSource

logger = logging.getLogger("queues.worker")


def concurrency_given() -> bool:
    """Whether the running ``celery worker`` command got its concurrency from its caller.

    ``True`` outside a click command: a worker built in code was given its concurrency.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return True
    source = ctx.get_parameter_source("concurrency")
    return source not in (None, ParameterSource.DEFAULT)


def queue_type_concurrency(queues: list[str]) -> int | None:
    """The ``concurrency`` of the one queue type served, or None (several queues, unknown,
    or the registry cannot be read)."""
    from django.db import DatabaseError

    from queues import registry

    if len(queues) != 1:
        return None
    try:
        spec = registry.all_specs().get(queues[0])
    except DatabaseError as exc:
        logger.warning("queue type of %s unreadable, pool size stays the default: %s",
                       queues[0], exc)
        return None
    return spec.concurrency if spec is not None else None


def apply_queue_type_concurrency(sender: Any, **_kwargs: Any) -> None:
    """``worker_init`` receiver: size the pool from the queue type when ``-c`` was not given."""
    if concurrency_given() or getattr(sender, "autoscale", None):
        return
    wanted = queue_type_concurrency(sorted(sender.app.amqp.queues.consume_from))
    if wanted is not None and wanted != sender.concurrency:
        logger.info("pool size %s, from the queue type (no -c given)", wanted)
        sender.concurrency = wanted
