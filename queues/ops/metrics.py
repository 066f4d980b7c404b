"""Cluster-wide Prometheus metrics, read from Redis when scraped.

No process keeps a metric in memory: the Lua transitions count into each
queue's stats hash (see ``queues.store.scripts``), and ``CoordinatorCollector``
turns those hashes, the state indexes, the paused flags and the worker
presence sets into metric families at scrape time. Every web process thus
serves the same numbers, whichever worker did the work. There is no Celery
signal receiver: counting inside the transitions costs no extra round trip
per job (DESIGN §4a, hot-path budget).

A scrape costs five round trips whatever the number of queues: the set of
queues Redis knows, then one pipeline for all of them; then the workers, their
hashes and their queues' oldest waiting jobs, for ``queue_workers_stuck``; and one
more per queue whose limits hold jobs back (``queue_jobs_limited`` by reason).

Labels are ``queue``, ``job_type`` and, on ``queue_jobs_limited``, ``reason`` only;
all are bounded (queue types, declared jobs, the two limits that hold a job back). Job
ids, group names and worker ids never become labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db import DatabaseError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from queues import registry
from queues.store import gate, queue_state
from queues.store import stats as stats_store
from queues.store import workers as worker_store

logger = logging.getLogger("queues.ops.metrics")

# The finish script's histogram bounds in milliseconds; it counts each
# finished job once, under the first bound its duration fits (not cumulative).
DURATION_BOUNDS = ("5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
                   "10000", "30000", "60000", "300000", "+Inf")
_LE = {bound: floatToGoString(float(bound) / 1000) for bound in DURATION_BOUNDS}  # in seconds

# Stats-hash metric (the part before ``|<job name>``) -> counter name and help.
COUNTERS = {
    "scheduled": ("jobs_scheduled", "Jobs accepted by enqueue."),
    "completed": ("jobs_completed", "Jobs that finished successfully."),
    "failed": ("jobs_failed", "Jobs that failed terminally (attempts exhausted, "
                              "non-retryable error, expired, or stalled too often)."),
    "retries": ("job_retries", "Failed attempts sent back for another try."),
    "stalled": ("jobs_stalled", "Active jobs whose lock expired or whose process died."),
}
# Rows the dead-letter writer created (``deadletter.recording.write``), counted as
# ``dead_lettered|<job>``: a failure quarantined as unwritable, or kept while the
# database is down, counts once its row exists; a duplicate write never counts.
DEAD_LETTER_FIELD = "dead_lettered"
DEAD_LETTER = ("jobs_dead_letter", "Dead-letter rows written to the database.")
# The seed calls it ``job_processing_duration_ms``; ``promtool check metrics``
# rejects abbreviated and non-base units, so it is exposed in seconds.
DURATION_HISTOGRAM = "job_processing_duration_seconds"
GAUGE_STATES = ("waiting", "active", "completed", "failed", "delayed")
JOB_LABELS = ("queue", "job_type")


@dataclass(frozen=True)
class QueueReading:
    """What one scrape read about one queue."""

    name: str
    declared_jobs: tuple[str, ...]
    stats: dict[str, int]
    counts: dict[str, int]
    paused: bool
    workers: int
    scale_target: int = -1  # processes wanted by scale_workers; -1 when never set
    quarantined_dead_letters: int = 0
    quarantined_messages: int = 0
    stuck_workers: int = 0  # live workers of the queue that stopped taking jobs
    # jobs the queue's limits hold back, by reason (queues.store.gate.REASONS)
    limited: dict[str, int] = field(default_factory=dict)


@dataclass
class JobTypeTotals:
    """All-time figures of one job type of one queue, parsed from the stats hash."""

    counters: dict[str, int] = field(default_factory=dict)
    buckets: dict[str, int] = field(default_factory=dict)  # bound -> count in that bucket
    duration_sum: int = 0


def _specs() -> dict[str, registry.QueueTypeSpec]:
    try:
        return registry.all_specs()
    except DatabaseError as exc:
        # Everything scraped lives in Redis: a database outage must not blind
        # monitoring, so report the queues Redis knows.
        logger.warning("queue types unavailable, reporting the queues Redis knows: %s", exc)
        return {}


def read_queues() -> list[QueueReading]:
    """Read every registered or Redis-known queue in one pipeline.

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    specs = _specs()
    stuck = worker_store.stuck_by_queue()
    return [QueueReading(
        name=f.name, declared_jobs=specs[f.name].job_types if f.name in specs else (),
        stats=f.stats, counts=f.counts, paused=f.paused, workers=f.workers,
        scale_target=f.scale_target, quarantined_dead_letters=f.quarantined_dead_letters,
        quarantined_messages=f.quarantined_messages, stuck_workers=len(stuck.get(f.name, ())),
        limited=gate.held_by_reason(f.name) if f.counts["limited"] else {})
        for f in queue_state.read_all(specs, (*GAUGE_STATES, "limited"))]


def job_type_totals(reading: QueueReading) -> dict[str, JobTypeTotals]:
    """Per job type figures of a queue; declared job types that never ran count zero."""
    totals = {job: JobTypeTotals() for job in reading.declared_jobs}
    for name, value in reading.stats.items():
        field = stats_store.split_field(name)
        if field is None:
            continue  # queue-wide counters (``failed``, ``retry_error:…``) carry no job type
        if field.metric == "duration":
            totals.setdefault(field.job, JobTypeTotals()).buckets[field.bound] = value
        elif field.metric == "duration_sum":
            totals.setdefault(field.job, JobTypeTotals()).duration_sum = value
        elif field.metric in COUNTERS or field.metric == DEAD_LETTER_FIELD:
            totals.setdefault(field.job, JobTypeTotals()).counters[field.metric] = value
    return totals


def cumulative_buckets(buckets: dict[str, int]) -> list[tuple[str, float]]:
    """Prometheus ``le`` buckets in seconds (cumulative, ending at +Inf) from per-bucket counts."""
    bounds: Iterable[str] = DURATION_BOUNDS
    if not buckets.keys() <= _LE.keys():  # a bound the scripts do not write today
        bounds = sorted(set(DURATION_BOUNDS) | set(buckets), key=float)
    running, out = 0, []
    for bound in bounds:
        running += buckets.get(bound, 0)
        out.append((_LE.get(bound) or floatToGoString(float(bound) / 1000), float(running)))
    return out


Series = list[tuple[list[str], JobTypeTotals]]  # (queue, job type) labels and figures


def _series(readings: Iterable[QueueReading]) -> Series:
    return [([reading.name, job], totals) for reading in readings
            for job, totals in sorted(job_type_totals(reading).items())]


# Generators: each family is formatted and dropped before the next is built,
# so a scrape holds fewer objects at once.
def _job_families(series: Series) -> Iterator[Metric]:
    for metric, (name, doc) in COUNTERS.items():
        family = CounterMetricFamily(name, doc, labels=JOB_LABELS)
        for labels, totals in series:
            family.add_metric(labels, totals.counters.get(metric, 0))
        yield family
    dead = CounterMetricFamily(*DEAD_LETTER, labels=JOB_LABELS)
    for labels, totals in series:
        dead.add_metric(labels, totals.counters.get(DEAD_LETTER_FIELD, 0))
    yield dead
    durations = HistogramMetricFamily(
        DURATION_HISTOGRAM, "Time from start to finish of the attempt that ended the job.",
        labels=JOB_LABELS)
    for labels, totals in series:
        durations.add_metric(labels, cumulative_buckets(totals.buckets),
                             totals.duration_sum / 1000)
    yield durations


PerQueue = tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str,
                 Callable[[QueueReading], float]]


def _queue_families(readings: list[QueueReading]) -> Iterator[Metric]:
    for state in GAUGE_STATES:
        family = GaugeMetricFamily(f"queue_jobs_{state}", f"Jobs {state} now.", labels=["queue"])
        for reading in readings:
            family.add_metric([reading.name], reading.counts[state])
        yield family
    held = GaugeMetricFamily("queue_jobs_limited", "Jobs the queue's rate limit or concurrency "
                             "holds back now, by the limit.", labels=["queue", "reason"])
    for reading in readings:
        for reason in gate.REASONS:
            held.add_metric([reading.name, reason], reading.limited.get(reason, 0))
    yield held
    per_queue: tuple[PerQueue, ...] = (
        (GaugeMetricFamily, "queue_paused", "1 while the queue is paused.",
         lambda reading: int(reading.paused)),
        (GaugeMetricFamily, "queue_active_workers",
         "Workers serving the queue with a recent heartbeat.", lambda reading: reading.workers),
        (GaugeMetricFamily, "queue_workers_stuck",
         "Live workers of the queue with a free slot that took no job for "
         "WORKER_STUCK_AFTER while a job waited that long.",
         lambda reading: reading.stuck_workers),
        (CounterMetricFamily, "worker_scaling_events", "Scaling actions taken for the queue.",
         lambda reading: reading.stats.get("scaling_events", 0)),
        # For an external scaler (KEDA/HPA): processes the queue should have,
        # including what running workers could not host. -1: never set.
        (GaugeMetricFamily, "queue_desired_processes",
         "Processes scale_workers or the autoscaler asked for.",
         lambda reading: reading.scale_target),
        (GaugeMetricFamily, "queue_dead_letters_quarantined",
         "Terminal failures the database refused as rows, held in Redis for review.",
         lambda reading: reading.quarantined_dead_letters),
        (GaugeMetricFamily, "queue_messages_quarantined",
         "Items fetched from the queue's broker list that were not valid messages.",
         lambda reading: reading.quarantined_messages),
    )
    for kind, name, doc, read in per_queue:
        metric: GaugeMetricFamily | CounterMetricFamily = kind(name, doc, labels=["queue"])
        for reading in readings:
            metric.add_metric([reading.name], read(reading))
        yield metric


class CoordinatorCollector(Collector):
    """Yields the coordinator's metric families, read from Redis on each collect."""

    def describe(self) -> list[Metric]:
        # Names only (no samples), so registering does not read Redis.
        return [*_job_families([]), *_queue_families([])]

    def collect(self) -> Iterator[Metric]:
        readings = read_queues()
        yield from _job_families(_series(readings))
        yield from _queue_families(readings)


def build_registry() -> CollectorRegistry:
    """A private registry holding the coordinator's collector (never the global one)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(CoordinatorCollector())
    return reg


def render() -> bytes:
    """The Prometheus text exposition of every queue.

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    return generate_latest(build_registry())
