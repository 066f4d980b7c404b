"""What ``deadletter`` asks of every worker: write the dead letters kept during a DB outage.

A terminal failure that meets an unreachable SQL database waits in Redis
(``recording.record_failure``). Each worker looks for such failures every
``DEAD_LETTER_FLUSH`` seconds and writes them (``recording.flush_pending``).

``DeadletterConfig.ready()`` registers the flush through the hook that ``workers``
exposes (``workers.duties``), reached through Django's app registry: ``deadletter`` and
``workers`` never import each other (DESIGN §3), and ``WorkerDutyHost`` states all that
``deadletter`` relies on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, cast

from django.db import DatabaseError

from deadletter.recording import flush_pending

# The worker's logger, as when this duty was written in workers.bootsteps: the lines keep
# their logger name, and whatever level or filter is set for it.
logger = logging.getLogger("queues.worker")
DUTY_NAME = "dead letters"
DEAD_LETTER_FLUSH = 5.0  # seconds between looks for dead letters kept during a DB outage


class WorkerDutyHost(Protocol):
    """The ``workers`` app config, as far as ``deadletter`` uses it: its duty hook."""

    def register_duty(self, name: str, run: Callable[[], bool], *, interval_s: float) -> None:
        ...


def flush_pending_dead_letters() -> bool:
    """Write failures kept in Redis while the SQL database was unreachable.

    Returns ``False`` while the database is still unavailable, so the worker tries
    again after its retry-process delay rather than after ``DEAD_LETTER_FLUSH``.

    Raises:
        BackendUnavailable: Redis is unreachable (the worker logs it and waits the same delay).
    """
    try:
        flush_pending()
    except DatabaseError as exc:
        logger.info("dead letters still pending, database unavailable: %s", exc)
        return False
    return True


def register_with_workers() -> None:
    """Add the flush to every worker's periodic duties (called from ``AppConfig.ready()``)."""
    from django.apps import apps

    if not apps.is_installed("workers"):
        return  # without the workers app no worker runs, so nothing would flush
    host = cast(WorkerDutyHost, apps.get_app_config("workers"))
    host.register_duty(DUTY_NAME, flush_pending_dead_letters, interval_s=DEAD_LETTER_FLUSH)
