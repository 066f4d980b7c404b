"""A queue's flow control as people set it: rate limit, global concurrency, per-group limits.

The limits are queue-type fields (SQL, so they survive a Redis that lost its data)
and live copies in the queue's Redis meta hash, which the claim script reads on
every claim: ``set_limits`` changes both, so a change applies to the next claim on
every worker, and is audited (``management_action`` ``set_limits``). The admin,
the ops API (``PUT /queues/<name>/limits``) and the CLI (``jobqueue limits``) call
it; a worker copies its queues' limits to Redis at start (``sync_limits``).

What the limits do is in ``queues/store/lua/gate.lua``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

from queues import registry, signals
from queues.exceptions import ConfigurationError
from queues.store import gate

if TYPE_CHECKING:
    from queues.models import QueueType

_MAX_DURATION_MS = 7 * 24 * 3600 * 1000
_MAX_COUNT = 1_000_000


class RateLimit(pydantic.BaseModel):
    """At most ``max`` jobs start in any window of ``duration_ms`` (seed ``rateLimit``)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    max: int = pydantic.Field(ge=1, le=_MAX_COUNT)
    duration_ms: int = pydantic.Field(ge=1, le=_MAX_DURATION_MS)


class QueueLimits(pydantic.BaseModel):
    """Every limit of a queue; ``None`` turns one off."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    rate_limit: RateLimit | None = None
    concurrency: int | None = pydantic.Field(None, ge=1, le=_MAX_COUNT)
    group_concurrency: int | None = pydantic.Field(None, ge=1, le=_MAX_COUNT)
    group_rate_limit: RateLimit | None = None

    def as_store(self) -> gate.Limits:
        rate, group_rate = self.rate_limit, self.group_rate_limit
        return gate.Limits(
            rate_max=rate.max if rate else None, rate_ms=rate.duration_ms if rate else None,
            concurrency=self.concurrency, group_concurrency=self.group_concurrency,
            group_rate_max=group_rate.max if group_rate else None,
            group_rate_ms=group_rate.duration_ms if group_rate else None)

    def as_fields(self) -> dict[str, int | None]:
        """The queue-type fields that keep these limits."""
        store = self.as_store()
        return {"rate_limit_max": store.rate_max, "rate_limit_duration_ms": store.rate_ms,
                "global_concurrency": store.concurrency,
                "group_concurrency": store.group_concurrency,
                "group_rate_limit_max": store.group_rate_max,
                "group_rate_limit_duration_ms": store.group_rate_ms}


def _rate(count: int | None, duration: int | None) -> RateLimit | None:
    return RateLimit(max=count, duration_ms=duration) if count and duration else None


def of_row(row: QueueType) -> QueueLimits:
    """The limits a queue-type row keeps."""
    return QueueLimits(
        rate_limit=_rate(row.rate_limit_max, row.rate_limit_duration_ms),
        concurrency=row.global_concurrency, group_concurrency=row.group_concurrency,
        group_rate_limit=_rate(row.group_rate_limit_max, row.group_rate_limit_duration_ms))


def limits_of(name: str) -> QueueLimits:
    """The limits of queue type ``name``.

    Raises:
        QueueTypeNotFound: no such queue type.
    """
    from queues.models import QueueType

    registry.get(name)
    return of_row(QueueType.objects.get(name=name))


def parse(raw: Any) -> QueueLimits:
    """Limits from JSON-like input (API body, CLI, admin).

    Raises:
        ConfigurationError: not valid limits (the message names the fields).
    """
    if isinstance(raw, QueueLimits):
        return raw
    try:
        return QueueLimits.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'limits'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigurationError(f"invalid limits: {problems}") from None


def set_limits(name: str, limits: QueueLimits | dict[str, Any], *,
               actor: str = "system") -> QueueLimits:
    """Make ``limits`` queue ``name``'s, in SQL and on every worker's next claim; audited.

    Raises:
        QueueTypeNotFound: no such queue type.
        ConfigurationError: invalid limits; nothing changes then.
    """
    from queues.models import QueueType

    new = parse(limits)
    previous = limits_of(name)
    QueueType.objects.filter(name=name).update(**new.as_fields())
    registry.invalidate()
    applied(name, new, previous=previous, actor=actor)
    return new


def applied(name: str, new: QueueLimits, *, previous: QueueLimits, actor: str) -> None:
    """The queue type's row now keeps ``new``: copy it to Redis and audit the change.

    ``set_limits`` calls it, and the admin after saving a queue type.
    """
    gate.write_limits(name, new.as_store())
    if new != previous:
        signals.announce(actor, "set_limits", target_type="queue", target_id=name, queue=name,
                         limits=new.model_dump(), previous=previous.model_dump())


def sync_limits(name: str) -> None:
    """Copy the queue type's limits from SQL to Redis (a worker's start, a new queue)."""
    gate.write_limits(name, limits_of(name).as_store())
