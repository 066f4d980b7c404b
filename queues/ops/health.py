"""Queue health (seed §5.2), bottleneck analysis and optimisation advice (seed §9.1).

Everything is computed from recorded data: job counts from the state
indexes, live workers and their memory and CPU from their heartbeats, and
rates from the per-minute buckets of ``queues.ops.stats`` (processing rate and
wait over ``HEALTH_PROCESSING_WINDOW`` minutes, error rate over
``HEALTH_ERROR_WINDOW``; buckets live two hours, so windows stay within that).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from queues import registry, store
from queues.conf import LazySettings, settings
from queues.exceptions import BackendUnavailable
from queues.ops import manager, stats
from queues.store import workers as worker_store


class HealthSettings(LazySettings):
    """Thresholds of the health rules and the optimizer; ``COORDINATOR_<NAME>`` overrides."""

    HEALTH_MAX_WAITING: int = 1000  # jobs
    HEALTH_MAX_ERROR_RATE: float = 0.1  # share of finished jobs
    HEALTH_MAX_AVERAGE_WAIT: int = 300000  # ms
    HEALTH_PROCESSING_WINDOW: int = 5  # minutes
    HEALTH_ERROR_WINDOW: int = 60  # minutes
    OPTIMIZER_MAX_QUEUE_DEPTH: int = 100  # jobs
    OPTIMIZER_MAX_PROCESSING_TIME: int = 30000  # ms
    OPTIMIZER_MAX_MEMORY_USAGE: float = 0.8  # share of WORKER_MEMORY_LIMIT
    WORKER_MEMORY_LIMIT: int = 0  # bytes one worker may use; 0: unknown, memory not judged


health_settings = HealthSettings()


@dataclass(frozen=True)
class HealthIssue:
    """One finding: ``rule`` names the check, ``severity`` is info, warning or critical."""

    rule: str
    severity: str
    message: str


@dataclass(frozen=True)
class HealthRecommendation:
    """Seed ``HealthRecommendation``: what to do about an issue, and how urgently."""

    # type: scale_workers, adjust_settings, investigate_errors, resume_queue or
    # restart_worker
    # priority: low, medium or high

    type: str
    priority: str
    description: str
    action: str


@dataclass(frozen=True)
class QueueHealthMetrics:
    """Seed ``QueueHealthMetrics`` plus the mean processing time.

    Times in ms, rate in jobs per minute, error rate 0-1; each over its window.
    """

    job_counts: dict[str, int]
    active_workers: int
    is_paused: bool
    processing_rate: float
    average_wait_time: float
    average_processing_time: float
    error_rate: float
    processing_window_minutes: int
    error_window_minutes: int
    # Terminal failures the database refused as rows, held in Redis (deadletter.recording).
    quarantined_dead_letters: int = 0
    # Broker items that were not valid messages, held in Redis (queues.store.transport).
    quarantined_messages: int = 0
    # Live workers of the queue that took no job for WORKER_STUCK_AFTER while jobs waited.
    stuck_workers: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueHealth:
    """Seed ``QueueHealthStatus`` plus its recommendations."""

    queue_name: str
    status: str  # healthy, degraded, unhealthy, unknown
    message: str
    metrics: QueueHealthMetrics | None
    issues: tuple[HealthIssue, ...]
    recommendations: tuple[HealthRecommendation, ...]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def queue_health(name: str) -> QueueHealth:
    """Check one queue against the seed's rules.

    Returns status ``unknown`` (and no metrics) when Redis cannot be read.

    Raises:
        QueueTypeNotFound: ``name`` is not registered.
    """
    spec = registry.get(name)
    try:
        measured = _health_metrics(name)
    except BackendUnavailable as exc:
        issue = HealthIssue("backend", "critical", f"Cannot read the queue's state: {exc}")
        return QueueHealth(name, "unknown", "Queue status unknown", None, (issue,), ())
    issues = tuple(_issues(spec, measured))
    status = _status(issues)
    return QueueHealth(
        queue_name=name, status=status, message=_message(status, issues), metrics=measured,
        issues=issues,
        recommendations=tuple(_recommendations(spec, issues, measured.stuck_workers)),
    )


def _health_metrics(name: str) -> QueueHealthMetrics:
    cfg = health_settings
    status = manager.queue_status(name)
    recent = stats.window(name, cfg.HEALTH_PROCESSING_WINDOW)
    errors = stats.window(name, cfg.HEALTH_ERROR_WINDOW)
    return QueueHealthMetrics(
        job_counts=status.job_counts, active_workers=status.workers, is_paused=status.is_paused,
        processing_rate=round(recent.processing_rate, 3),
        average_wait_time=round(recent.average_wait_time, 3),
        average_processing_time=round(recent.average_processing_time, 3),
        error_rate=round(errors.error_rate, 4),
        processing_window_minutes=recent.minutes, error_window_minutes=errors.minutes,
        quarantined_dead_letters=store.quarantined_dead_letter_count(name),
        quarantined_messages=store.quarantined_message_count(name),
        stuck_workers=tuple(worker_store.stuck_by_queue().get(name, ())),
    )


def _issues(spec: registry.QueueTypeSpec, m: QueueHealthMetrics) -> list[HealthIssue]:
    cfg = health_settings
    waiting = m.job_counts["waiting"]
    found = []
    if waiting > cfg.HEALTH_MAX_WAITING:
        found.append(HealthIssue("backlog", "warning", f"High number of waiting jobs: {waiting}"))
    elif waiting > spec.scaling_threshold:
        found.append(HealthIssue("scaling_threshold", "info", (
            f"{waiting} jobs waiting, above the queue type's scaling threshold "
            f"({spec.scaling_threshold})")))
    if m.active_workers == 0 and waiting > 0:
        found.append(HealthIssue("no_workers", "critical",
                                 "No active workers but jobs are waiting"))
    if m.error_rate > cfg.HEALTH_MAX_ERROR_RATE:
        found.append(HealthIssue("error_rate", "warning", (
            f"High error rate: {m.error_rate * 100:.1f}% over {m.error_window_minutes} min")))
    if m.is_paused:
        found.append(HealthIssue("paused", "warning", "Queue is currently paused"))
    if m.quarantined_dead_letters:
        found.append(HealthIssue("dead_letter_quarantine", "warning", (
            f"{m.quarantined_dead_letters} dead letter(s) could not be written to the database "
            "and are held in Redis")))
    if m.quarantined_messages:
        found.append(HealthIssue("message_quarantine", "warning", (
            f"{m.quarantined_messages} item(s) in the broker list were not valid messages "
            "and are held in Redis")))
    if m.stuck_workers:
        found.append(_stuck_issue(m))
    if m.average_wait_time > cfg.HEALTH_MAX_AVERAGE_WAIT:
        found.append(HealthIssue("wait_time", "warning", (
            f"High average wait time: {round(m.average_wait_time / 1000)}s")))
    return found


def _stuck_issue(m: QueueHealthMetrics) -> HealthIssue:
    """Critical when no live worker of the queue still takes jobs, else a warning."""
    names = ", ".join(m.stuck_workers)
    severity = "critical" if len(m.stuck_workers) >= m.active_workers else "warning"
    return HealthIssue("workers_stuck", severity, (
        f"{len(m.stuck_workers)} worker(s) heartbeat but took no job for "
        f"{round(settings.WORKER_STUCK_AFTER / 1000)}s while jobs waited: {names}"))


def _status(issues: tuple[HealthIssue, ...]) -> str:
    severities = {issue.severity for issue in issues}
    if "critical" in severities:
        return "unhealthy"
    return "degraded" if "warning" in severities else "healthy"


def _message(status: str, issues: tuple[HealthIssue, ...]) -> str:
    if status == "unhealthy":
        return "Queue has critical issues that require immediate attention"
    if status == "degraded":
        warnings = sum(issue.severity == "warning" for issue in issues)
        return f"Queue has {warnings} warning(s) but is still functional"
    return "Queue is operating normally"


def _recommendations(spec: registry.QueueTypeSpec, issues: tuple[HealthIssue, ...],
                     stuck: tuple[str, ...] = ()) -> list[HealthRecommendation]:
    name = spec.name
    scale = (f"add processes: POST /queues/{name}/scale with a larger targetWorkers "
             f"(the queue type allows {spec.min_workers}-{spec.max_workers})")
    advice = {
        "backlog": ("scale_workers", "high", "The backlog exceeds the waiting-jobs threshold",
                    scale),
        "scaling_threshold": ("scale_workers", "low",
                              "The backlog is above the queue type's scaling threshold", scale),
        "no_workers": ("scale_workers", "high", "No live worker serves this queue",
                       f"start one: celery -A coordinator_project worker -Q {name}"),
        "error_rate": ("investigate_errors", "high", "Too many jobs fail",
                       f"review the dead letters: GET /queues/{name}/failed or Django admin"),
        "paused": ("resume_queue", "medium", "The queue is paused: no job starts",
                   f"queues.manager.resume_queue({name!r}) when the pause is no longer needed"),
        "wait_time": ("scale_workers", "medium", "Jobs wait too long before they start",
                      scale),
        "dead_letter_quarantine": (
            "investigate_errors", "high", "The database refused some dead letters as rows",
            f"read their errors: manage.py jobqueue quarantine {name} (then --retry)"),
        "message_quarantine": (
            "investigate_errors", "medium", "Something publishes malformed messages",
            f"read them and their reasons: manage.py jobqueue quarantine {name}"),
        # Its consumer is frozen, so remote control may not reach it either: a signal does.
        "workers_stuck": (
            "restart_worker", "high", "Workers heartbeat but no longer take jobs",
            f"restart {', '.join(stuck)}: SIGTERM to the worker's main process (its pid is "
            "on the dashboard's Workers page), then start it again or let its supervisor"),
    }
    return [HealthRecommendation(*advice[issue.rule]) for issue in issues
            if issue.rule in advice]


# --- Performance optimizer (seed §9.1) -------------------------------------------------

@dataclass(frozen=True)
class BottleneckAnalysis:
    """Seed ``BottleneckAnalysis`` from recorded data.

    ``queue_depth`` is the backlog now (the buckets do not sample depth over
    time); rates cover ``window_minutes``; ``memory_usage`` is the largest
    worker's RSS as a share of ``WORKER_MEMORY_LIMIT`` (None while that is
    unset); ``cpu_usage`` is the mean CPU % of the live workers (100 = one core).
    """

    queue_name: str
    queue_depth: int
    avg_processing_time: float  # ms
    throughput: float  # jobs finished per minute
    error_rate: float
    workers: int
    utilisation: float  # busy share of the live workers' process slots
    memory_rss_bytes: int  # all live workers together
    memory_usage: float | None
    cpu_usage: float
    window_minutes: int


@dataclass(frozen=True)
class OptimizationAction:
    """One recommendation; ``evidence`` gives the measured figures behind it.

    ``expected_impact`` is stated only where measured data supports it
    (DESIGN §8.17): the seed's fixed percentages are not shipped.
    """

    type: str
    priority: str
    description: str
    evidence: str
    expected_impact: str | None = None


@dataclass(frozen=True)
class OptimizationResult:
    """Seed ``OptimizationResult`` without its invented ``estimatedImprovement``."""

    queue_name: str
    current_performance: float  # 0-100
    recommendations: tuple[OptimizationAction, ...]
    analysis: BottleneckAnalysis

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def analyze_bottlenecks(name: str) -> BottleneckAnalysis:
    """Backlog, throughput, errors and worker resources of one queue.

    Raises:
        QueueTypeNotFound: ``name`` is not registered.
        BackendUnavailable: Redis is unreachable.
    """
    measured = _health_metrics(name)
    rows = worker_store.live_resources(name)
    rss = [row[0] for row in rows]
    slots = sum(row[3] for row in rows)
    limit = health_settings.WORKER_MEMORY_LIMIT
    return BottleneckAnalysis(
        queue_name=name, queue_depth=measured.job_counts["waiting"],
        avg_processing_time=measured.average_processing_time,
        throughput=measured.processing_rate, error_rate=measured.error_rate,
        workers=len(rows),
        utilisation=round(sum(row[2] for row in rows) / slots, 3) if slots else 0.0,
        memory_rss_bytes=int(sum(rss)),
        memory_usage=round(max(rss) / limit, 3) if limit > 0 and rss else None,
        cpu_usage=round(sum(row[1] for row in rows) / len(rows), 1) if rows else 0.0,
        window_minutes=measured.processing_window_minutes,
    )


def optimize_queue(name: str) -> OptimizationResult:
    """Score a queue 0-100 and recommend changes from its bottleneck analysis.

    Raises:
        QueueTypeNotFound: ``name`` is not registered.
        BackendUnavailable: Redis is unreachable.
    """
    analysis = analyze_bottlenecks(name)
    return OptimizationResult(
        queue_name=name, current_performance=performance_score(analysis),
        recommendations=tuple(_optimizations(analysis)), analysis=analysis,
    )


def performance_score(a: BottleneckAnalysis) -> float:
    """The seed's mean of queue, throughput and error scores, fair to idle queues.

    The seed scores throughput as ``min(100, throughput / 10)``, which marks
    an idle queue down. Here throughput is judged against demand: the share
    of the backlog the measured rate clears within ``HEALTH_MAX_AVERAGE_WAIT``
    (100 when nothing waits).
    """
    queue_score = max(0.0, 100 - a.queue_depth / 10)
    drain_minutes = health_settings.HEALTH_MAX_AVERAGE_WAIT / 60000
    cleared = a.throughput * drain_minutes / a.queue_depth if a.queue_depth else 1.0
    throughput_score = min(100.0, 100 * cleared)
    error_score = max(0.0, 100 - a.error_rate * 100)
    return round((queue_score + throughput_score + error_score) / 3, 1)


def _optimizations(a: BottleneckAnalysis) -> list[OptimizationAction]:
    cfg = health_settings
    found = []
    if a.queue_depth > cfg.OPTIMIZER_MAX_QUEUE_DEPTH:
        found.append(OptimizationAction(
            "scale_workers", "high", "Scale up workers to handle the queue backlog",
            f"{a.queue_depth} jobs waiting; {a.workers} live worker(s), {a.utilisation:.0%} busy; "
            f"{a.throughput:.1f} jobs/min over {a.window_minutes} min", _scaling_impact(a)))
    if a.avg_processing_time > cfg.OPTIMIZER_MAX_PROCESSING_TIME:
        found.append(OptimizationAction(
            "optimize_job_logic", "medium", "Review and optimise the job processing logic",
            f"average processing time {a.avg_processing_time / 1000:.1f}s over "
            f"{a.window_minutes} min"))
    if a.memory_usage is not None and a.memory_usage > cfg.OPTIMIZER_MAX_MEMORY_USAGE:
        found.append(OptimizationAction(
            "optimize_memory", "high", "Optimise memory usage in job processors",
            f"the largest worker uses {a.memory_usage:.0%} of WORKER_MEMORY_LIMIT"))
    if a.error_rate > cfg.HEALTH_MAX_ERROR_RATE:
        found.append(OptimizationAction(
            "investigate_errors", "high", "Find out why jobs fail",
            f"error rate {a.error_rate:.1%} over {cfg.HEALTH_ERROR_WINDOW} min"))
    return found


def _scaling_impact(a: BottleneckAnalysis) -> str | None:
    """What one more worker adds, projected from the measured rate per live worker.

    Only while every process slot was busy at the last heartbeats: with idle
    slots the backlog is held by something else, and more workers may not help.
    """
    if not a.workers or not a.throughput or a.utilisation < 1:
        return None
    per_worker = a.throughput / a.workers
    return (f"about {per_worker:.1f} more jobs/min per added worker (the measured rate per "
            f"live worker); at today's rate the backlog clears in "
            f"{a.queue_depth / a.throughput:.0f} min")
