"""The dead-letter retention job on the ``maintenance`` queue (scheduled by beat)."""

from __future__ import annotations

from typing import Any

from deadletter import retention
from queues.jobs import JobContext, job


@job("maintenance", "expire-dead-letters", attempts=1)
def expire_dead_letters(data: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Archive and purge one queue's old dead letters by its queue type's policy."""
    done = retention.apply_policy(data["queue"])
    ctx.log(f"archived {done['archived']}, purged {done['purged']} dead letters")
    return done
