"""The autoscaler's job on the ``maintenance`` queue (scheduled by beat)."""

from __future__ import annotations

from typing import Any

from queues.conf import settings
from queues.jobs import JobContext, job


@job("maintenance", "autoscale", attempts=1, remove_on_complete=10)
def autoscale(data: dict[str, Any], ctx: JobContext) -> list[dict[str, Any]]:
    """Apply every enabled scaling policy once (gated by ENABLE_AUTO_SCALING)."""
    from workers.autoscaling import check_all

    if not settings.ENABLE_AUTO_SCALING:
        return []
    return [{"queue": d.queue, "current": d.current, "target": d.target, "outcome": d.outcome}
            for d in check_all()]
