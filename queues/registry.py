"""The queue-type registry as the hot path sees it.

Queue types live in SQL (``queues.models.QueueType``) because people edit
them, but enqueueing must not touch SQL per job. Each process keeps a snapshot
of frozen ``QueueTypeSpec``s, reloaded when older than
``REGISTRY_REFRESH_INTERVAL`` and dropped at once when this process saves or
deletes a queue type.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from queues.conf import settings
from queues.exceptions import QueueTypeNotFound
from queues.options import JobOptions

if TYPE_CHECKING:
    from queues.models import QueueType


@dataclass(frozen=True)
class QueueTypeSpec:
    """One queue type's configuration, detached from the ORM."""

    name: str
    display_name: str
    job_types: tuple[str, ...]
    default_options: JobOptions
    stalled_interval_ms: int
    max_stalled_count: int
    concurrency: int | None  # None: DEFAULT_WORKER_CONCURRENCY
    min_workers: int
    max_workers: int
    scaling_threshold: int
    cleanup_enabled: bool = True
    completed_job_age_ms: int = 24 * 3600 * 1000
    failed_job_age_ms: int = 7 * 24 * 3600 * 1000
    cleanup_interval_ms: int = 3600 * 1000
    soft_time_limit_ms: int | None = None
    time_limit_ms: int | None = None
    retry_process_delay_ms: int = 5000
    # The job names enqueue accepts; None: every job declared on the queue.
    accepted_job_types: frozenset[str] | None = None

    @classmethod
    def from_model(cls, row: QueueType) -> QueueTypeSpec:
        return cls(
            name=row.name,
            display_name=row.display_name,
            job_types=tuple(row.job_types),
            default_options=_default_options(row),
            stalled_interval_ms=row.stalled_interval_ms,
            max_stalled_count=row.max_stalled_count,
            concurrency=row.concurrency,
            min_workers=row.min_workers,
            max_workers=row.max_workers,
            scaling_threshold=row.scaling_threshold,
            cleanup_enabled=row.cleanup_enabled,
            completed_job_age_ms=row.completed_job_age_ms,
            failed_job_age_ms=row.failed_job_age_ms,
            cleanup_interval_ms=row.cleanup_interval_ms,
            soft_time_limit_ms=row.soft_time_limit_ms,
            time_limit_ms=row.time_limit_ms,
            retry_process_delay_ms=row.retry_process_delay_ms,
            accepted_job_types=_accepted_job_types(row),
        )


# The seed's types (§5.1). Their lists are the seed's names plus every job the
# code declares on them (DESIGN §8.14), so they accept every declared job; a
# queue type created at runtime with a list accepts only the names listed.
BUILTIN_QUEUE_TYPES = frozenset({"photo-processing", "batch-processing", "maintenance"})


def _accepted_job_types(row: QueueType) -> frozenset[str] | None:
    if not row.job_types or row.name in BUILTIN_QUEUE_TYPES:
        return None
    return frozenset(row.job_types)


def _default_options(row: QueueType) -> JobOptions:
    """The queue type's level of option precedence; an empty field leaves it to the global."""
    backoff = {"type": row.backoff_type, "delay": row.backoff_delay_ms,
               "max_delay": row.backoff_max_delay_ms}
    return JobOptions(
        attempts=row.default_attempts,
        backoff={k: v for k, v in backoff.items() if v is not None},
        priority=row.default_priority,
        remove_on_complete=row.remove_on_complete,
        remove_on_fail=row.remove_on_fail,
    )


class _Snapshot:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.specs: dict[str, QueueTypeSpec] = {}
        self.loaded_at = float("-inf")


_snapshot = _Snapshot()


def _load() -> dict[str, QueueTypeSpec]:
    from queues.models import QueueType

    return {row.name: QueueTypeSpec.from_model(row) for row in QueueType.objects.all()}


def all_specs() -> dict[str, QueueTypeSpec]:
    """Every registered queue type by name (from the process snapshot)."""
    max_age = settings.REGISTRY_REFRESH_INTERVAL / 1000
    with _snapshot.lock:
        if time.monotonic() - _snapshot.loaded_at > max_age:
            _snapshot.specs = _load()
            _snapshot.loaded_at = time.monotonic()
        return _snapshot.specs


def get(name: str) -> QueueTypeSpec:
    """The queue type called ``name``.

    Raises:
        QueueTypeNotFound: no queue type has that name.
    """
    spec = all_specs().get(name)
    if spec is None:
        invalidate()  # it may have been created elsewhere a moment ago
        spec = all_specs().get(name)
    if spec is None:
        raise QueueTypeNotFound(name)
    return spec


def invalidate(*_args: Any, **_kwargs: Any) -> None:
    """Drop the snapshot; connected to QueueType's post_save/post_delete."""
    with _snapshot.lock:
        _snapshot.loaded_at = float("-inf")
