"""The coordinator's own jobs on the ``maintenance`` queue (scheduled by beat)."""

from __future__ import annotations

from typing import Any

from queues import manager
from queues.context import JobContext
from queues.jobs import job


@job("maintenance", "clean-queue", attempts=1)
def clean_queue(data: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Trim one queue's finished job records by its cleanup policy."""
    removed = manager.clean_queue(data["queue"])
    ctx.log(f"removed {removed['completed']} completed and {removed['failed']} failed records")
    return removed
