"""Job options: validation and precedence.

Precedence, highest first: the option given on the call, the job's declared
default (``@job(attempts=...)``), the queue type's default, the global default
from the environment (``DEFAULT_JOB_*``). ``backoff`` merges key by key, so a
call may change only its ``delay``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic

from queues.conf import settings
from queues.exceptions import JobValidationError

MAX_PRIORITY = 9  # kombu's Redis transport has exactly ten levels, 0 runs first.
DEFAULT_MAX_BACKOFF_MS = 300_000  # seed §7.1: exponential backoff caps at 5 minutes.
# A job id is a Redis key part and a URL path segment (``/queues/<q>/jobs/<id>``):
# no ``/``, whitespace, control characters or NUL, so every accepted job can be
# read back through the API and written to SQL (DESIGN §8.18). The ids the
# coordinator derives fit: recurring runs ``recurring:<entry>:<UTC tick>``,
# adopted messages' Celery task ids (UUIDs), requeues ``<id>:r<n>`` (unless the
# original id is so long that the suffix takes it past 200 characters).
MAX_JOB_ID_LENGTH = 200
JOB_ID_PATTERN = rf"^[A-Za-z0-9._:-]{{1,{MAX_JOB_ID_LENGTH}}}$"
# Trace and client ids: printable ASCII without spaces, at most 128 characters.
TAG_ID_PATTERN = r"^[!-~]{1,128}$"

RemovePolicy = bool | pydantic.NonNegativeInt
# ``expires`` as Celery takes it: seconds from enqueue (not a bool, finite, at most
# ten years), or an aware datetime (an ISO 8601 string over HTTP).
MAX_EXPIRES_S = 10 * 365 * 86400
ExpiresSeconds = Annotated[float, pydantic.Field(gt=0, le=MAX_EXPIRES_S, allow_inf_nan=False,
                                                 strict=True)]


class Backoff(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    type: Literal["fixed", "exponential"] = "exponential"
    delay: pydantic.NonNegativeInt = 2000
    max_delay: pydantic.NonNegativeInt = DEFAULT_MAX_BACKOFF_MS


# A de-duplication key lives in Redis for ttl_ms; a month bounds what a typo can hold.
MAX_DEDUP_TTL_MS = 30 * 86400 * 1000


class Dedup(pydantic.BaseModel):
    """De-duplication by key (BullMQ's ``deduplication``), for one job at a time.

    ``throttle``: while the key lives (``ttl_ms`` from the first enqueue), an
    enqueue with it returns the job that set it and writes nothing. ``debounce``
    (needs a delay): while the key lives and its job is still delayed and never
    ran, an enqueue replaces that job's payload, restarts its delay and the key's
    ttl; once the job has started, the next enqueue makes a new job.
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    # The key is a Redis key part, so it follows the job id rules.
    key: str = pydantic.Field(pattern=JOB_ID_PATTERN, strict=True)
    ttl_ms: int = pydantic.Field(gt=0, le=MAX_DEDUP_TTL_MS, strict=True)
    mode: Literal["throttle", "debounce"] = "throttle"


class JobOptions(pydantic.BaseModel):
    """Options as given at one level; ``None`` means "not set here"."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    priority: int | None = pydantic.Field(None, ge=0, le=MAX_PRIORITY)
    delay_ms: pydantic.NonNegativeInt | None = None
    run_at: datetime | None = None
    attempts: pydantic.PositiveInt | None = None
    backoff: dict[str, Any] | None = None
    job_id: str | None = pydantic.Field(None, pattern=JOB_ID_PATTERN)
    trace_id: str | None = pydantic.Field(None, pattern=TAG_ID_PATTERN)
    client_id: str | None = pydantic.Field(None, pattern=TAG_ID_PATTERN)
    remove_on_complete: RemovePolicy | None = None
    remove_on_fail: RemovePolicy | None = None
    # The job's deadline (Celery's ``expires``): an attempt not started by then
    # fails the job as ``expired`` (DESIGN §8.23).
    expires: ExpiresSeconds | datetime | None = None
    dedup: Dedup | None = None
    # The job's group (a tenant, a customer, an upstream API) for the queue's
    # per-group limits and round-robin (queues.ops.limits); a Redis key part.
    group: str | None = pydantic.Field(None, pattern=JOB_ID_PATTERN)


class ResolvedOptions(pydantic.BaseModel):
    """Every option decided, after precedence."""

    model_config = pydantic.ConfigDict(frozen=True)

    priority: int
    delay_ms: int
    attempts: int
    backoff: Backoff
    job_id: str | None
    trace_id: str | None
    client_id: str | None
    remove_on_complete: RemovePolicy
    remove_on_fail: RemovePolicy
    deadline_ms: int | None = None  # epoch ms; the claim script reads it from the record
    dedup: Dedup | None = None
    group: str | None = None


def parse(raw: dict[str, Any], *, where: str) -> JobOptions:
    """Validate one level of options.

    Raises:
        JobValidationError: naming the first bad option.
    """
    try:
        return JobOptions.model_validate(raw)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err["loc"]) or "options"
        raise JobValidationError(f"{err['msg']} ({where})", field=field) from None


def global_defaults() -> JobOptions:
    return JobOptions(
        priority=settings.DEFAULT_JOB_PRIORITY,
        attempts=settings.DEFAULT_JOB_ATTEMPTS,
        backoff={"type": "exponential", "delay": settings.DEFAULT_JOB_BACKOFF_DELAY},
        remove_on_complete=100,
        remove_on_fail=50,
    )


def resolve(*levels: JobOptions, now_ms: int) -> ResolvedOptions:
    """Merge option levels, highest precedence first, into resolved options.

    Raises:
        JobValidationError: when the merged backoff is invalid, both
            ``delay_ms`` and ``run_at`` are given, or a debounce has no delay.
    """

    def first(name: str) -> Any:
        return next((v for lvl in levels if (v := getattr(lvl, name)) is not None), None)

    backoff: dict[str, Any] = {}
    for level in reversed(levels):
        backoff.update(level.backoff or {})
    try:
        merged_backoff = Backoff.model_validate(backoff)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field = "backoff." + ".".join(str(part) for part in err["loc"])
        raise JobValidationError(err["msg"], field=field) from None
    delay_ms = _delay_ms(first("delay_ms"), first("run_at"), now_ms)
    return ResolvedOptions(
        priority=first("priority") or 0,
        delay_ms=delay_ms,
        attempts=first("attempts") or 1,
        backoff=merged_backoff,
        job_id=first("job_id"),
        trace_id=first("trace_id"),
        client_id=first("client_id"),
        remove_on_complete=_first_policy(levels, "remove_on_complete"),
        remove_on_fail=_first_policy(levels, "remove_on_fail"),
        deadline_ms=_deadline_ms(first("expires"), now_ms, due_ms=now_ms + delay_ms),
        dedup=_dedup(first("dedup"), delay_ms),
        group=first("group"),
    )


def _first_policy(levels: tuple[JobOptions, ...], name: str) -> RemovePolicy:
    # ``False`` is a real choice here (keep everything), so test for None only.
    return next((v for lvl in levels if (v := getattr(lvl, name)) is not None), False)


def _delay_ms(delay_ms: int | None, run_at: datetime | None, now_ms: int) -> int:
    if delay_ms is not None and run_at is not None:
        raise JobValidationError("give delay_ms or run_at, not both", field="run_at")
    if run_at is None:
        return delay_ms or 0
    if run_at.tzinfo is None:
        raise JobValidationError("run_at must be timezone-aware", field="run_at")
    return max(0, int(run_at.timestamp() * 1000) - now_ms)


def _dedup(dedup: Dedup | None, delay_ms: int) -> Dedup | None:
    # A debounce restarts a pending delay: without one there is nothing to restart.
    if dedup is not None and dedup.mode == "debounce" and delay_ms <= 0:
        raise JobValidationError("dedup mode 'debounce' needs a delay: delay_ms > 0 (or a "
                                 "future run_at)", field="delay_ms")
    return dedup


def _deadline_ms(expires: float | datetime | None, now_ms: int, *, due_ms: int) -> int | None:
    """The absolute deadline of ``expires`` (seconds from now, or a datetime).

    Raises:
        JobValidationError: a naive datetime, or a deadline that is not after the
            job's due time (the job could never start).
    """
    if expires is None:
        return None
    if isinstance(expires, datetime):
        if expires.tzinfo is None:
            raise JobValidationError("expires must be timezone-aware", field="expires")
        deadline = int(expires.timestamp() * 1000)
    else:
        deadline = now_ms + int(expires * 1000)
    if deadline <= due_ms:
        raise JobValidationError("the deadline is not after the time the job becomes due: it could "
                                 "never start", field="expires")
    return deadline


def keep_count(policy: RemovePolicy) -> int:
    """The finish script's ``keep``: -1 keeps all, 0 removes at once, N keeps N."""
    if policy is True:
        return 0
    if policy is False:
        return -1
    return int(policy)
