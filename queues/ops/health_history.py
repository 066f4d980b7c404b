"""Queue health over time: recorded transitions and hourly throughput.

The ``health-check`` maintenance job (``ENABLE_HEALTH_CHECKS``, every
``HEALTH_CHECK_INTERVAL``) calls ``check_queue`` for every queue: it evaluates
``queues.health.queue_health`` and, when the status changed (healthy, degraded,
unhealthy), records the transition with its issues, sends
``queues.signals.queue_health_changed`` and logs one structured line.
``health_history`` reads the transitions back together with the hourly
completed/failed counts that ``metrics-aggregation`` rolls up
(``ENABLE_METRICS_COLLECTION``, every ``METRICS_COLLECTION_INTERVAL``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from queues import registry, signals, store
from queues.exceptions import ConfigurationError
from queues.ops import health
from queues.store import history as history_store

logger = logging.getLogger("queues.health")


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class HealthTransition:
    """One change of a queue's health status; ``previous`` is None for a first check."""

    at: datetime
    previous: str | None
    current: str
    issues: tuple[dict[str, str], ...]  # rule, severity, message


@dataclass(frozen=True)
class HourlyThroughput:
    """Jobs that finished in one clock hour (UTC), from the rolled-up minute buckets."""

    hour: datetime  # start of the hour
    completed: int
    failed: int
    error_rate: float  # failed share of finished, 0-1
    average_processing_time: float  # ms per finished job that ran to a recorded end


@dataclass(frozen=True)
class HealthHistory:
    """A queue's last checked status, its transitions and its hourly throughput.

    ``hourly`` lists the finished hours of the window that have a rolled-up
    hash, oldest first: an hour without one had no finished job, or was not
    rolled up (``ENABLE_METRICS_COLLECTION`` off). The current hour is not
    included: its minutes are rolled up once it is over.
    """

    queue_name: str
    status: str | None  # None: never checked (health checks off, or not run yet)
    checked_at: datetime | None
    transitions: tuple[HealthTransition, ...]  # newest first
    hourly: tuple[HourlyThroughput, ...]
    hours: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_queue(name: str) -> HealthTransition | None:
    """Evaluate one queue's health and record it; the transition if its status changed.

    A check that cannot read the queue (status ``unknown``) records nothing:
    an outage of Redis is not a change of the queue's health.

    Raises:
        QueueTypeNotFound: ``name`` is not registered.
        BackendUnavailable: Redis is unreachable when the result is written.
    """
    report = health.queue_health(name)
    if report.status == "unknown":
        logger.warning("health check of queue %s skipped: %s", name, report.issues[0].message,
                       extra={"queue": name})
        return None
    issues = [{"rule": i.rule, "severity": i.severity, "message": i.message}
              for i in report.issues]
    now = store.now_ms()
    changed, previous = history_store.record_health_check(name, report.status, issues, now=now)
    if not changed:
        return None
    transition = HealthTransition(_time(now), previous, report.status, tuple(issues))
    _announce(name, transition)
    return transition


def _announce(queue: str, t: HealthTransition) -> None:
    level = logging.INFO if t.current == "healthy" else logging.WARNING
    logger.log(level, "queue %s health changed: %s -> %s", queue, t.previous or "unchecked",
               t.current, extra={"queue": queue, "health_previous": t.previous,
                                 "health_current": t.current,
                                 "health_issues": [i["rule"] for i in t.issues]})
    signals.queue_health_changed.send(sender=None, queue=queue, previous=t.previous,
                                      current=t.current, issues=list(t.issues))


def health_history(name: str, *, hours: int = 24, limit: int = 100) -> HealthHistory:
    """The queue's recorded health transitions and its last ``hours`` hours of throughput.

    Raises:
        QueueTypeNotFound: ``name`` is not registered.
        ConfigurationError: ``hours`` is outside 1 to 168 (hourly data lives a week)
            or ``limit`` outside 1 to ``HEALTH_HISTORY_MAX``.
        BackendUnavailable: Redis is unreachable.
    """
    registry.get(name)
    if not 1 <= hours <= history_store.HOURLY_KEEP_HOURS:
        raise ConfigurationError(f"hours must be 1 to {history_store.HOURLY_KEEP_HOURS}")
    if not 1 <= limit <= history_store.HEALTH_HISTORY_MAX:
        raise ConfigurationError(f"limit must be 1 to {history_store.HEALTH_HISTORY_MAX}")
    state = history_store.health_state(name)
    transitions = tuple(
        HealthTransition(_time(t["at"]), t["previous"], t["current"], tuple(t["issues"]))
        for t in history_store.health_transitions(name, limit))
    return HealthHistory(
        queue_name=name, status=state.get("status"),
        checked_at=_time(int(state["checked_at"])) if state else None,
        transitions=transitions, hourly=_hourly(name, hours), hours=hours)


def _hourly(name: str, hours: int) -> tuple[HourlyThroughput, ...]:
    current_hour = store.now_ms() // 3_600_000
    found = history_store.hourly_stats(name, list(range(current_hour - hours, current_hour)))
    rows = []
    for hour, row in sorted(found.items()):
        completed, failed = row.get("completed", 0), row.get("failed", 0)
        finished = completed + failed
        # Failures that never ran to a recorded end (expired, stalled) have no time.
        timed = finished - row.get("untimed", 0)
        rows.append(HourlyThroughput(
            hour=_time(hour * 3_600_000), completed=completed, failed=failed,
            error_rate=round(failed / finished, 4) if finished else 0.0,
            average_processing_time=round(row.get("proc_ms", 0) / timed, 3) if timed else 0.0))
    return tuple(rows)
