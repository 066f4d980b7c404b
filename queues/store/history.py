"""A queue's history in Redis: health transitions and hourly statistics.

- the last health check (``keys.health_state``) and the transitions between
  statuses (``keys.health_history``), written by the ``health-check`` job;
- hourly statistics hashes (``keys.stats_hour``), rolled up by the
  ``metrics-aggregation`` job from the per-minute buckets the finish script writes.

Both are read back by ``queues.ops.health_history``.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from queues.store import backend, client, keys

HEALTH_HISTORY_MAX = 200  # transitions kept per queue (newest first)
HOURLY_TTL_S = 7 * 24 * 3600  # hourly hashes live a week
HOURLY_KEEP_HOURS = HOURLY_TTL_S // 3600


def _text(raw: bytes | str) -> str:
    # redis-py types replies as bytes or str; this client never decodes them.
    return raw.decode() if isinstance(raw, bytes) else raw


def record_health_check(queue: str, status: str, issues: list[dict[str, str]], *,
                        now: int) -> tuple[bool, str | None]:
    """Store one health check; on a change of status, push a transition to the history.

    Returns (whether a transition was recorded, the previous status or None
    for a queue never checked). A first check that finds the queue healthy
    records no transition: there is nothing to report yet.

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    state_key, history = keys.health_state(queue), keys.health_history(queue)
    previous: str | None = None
    with backend(), client().pipeline() as pipe:
        try:
            pipe.watch(state_key)
            raw = pipe.hget(state_key, "status")
            previous = _text(raw) if raw is not None else None
            changed = previous != status if previous is not None else status != "healthy"
            pipe.multi()
            pipe.hset(state_key, mapping={"status": status, "checked_at": now,
                                          "issues": json.dumps(issues)})
            if changed:
                entry = {"at": now, "previous": previous, "current": status, "issues": issues}
                pipe.lpush(history, json.dumps(entry))
                pipe.ltrim(history, 0, HEALTH_HISTORY_MAX - 1)
            pipe.execute()
        except redis.WatchError:
            # A concurrent check wrote first; its result is as fresh as ours.
            return False, previous
    return changed, previous


def health_state(queue: str) -> dict[str, str]:
    """The last health check of ``queue`` (status, checked_at, issues); empty if never checked."""
    with backend():
        raw = client().hgetall(keys.health_state(queue))
    return {_text(k): _text(v) for k, v in raw.items()}


def health_transitions(queue: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` transitions, newest first (at, previous, current, issues)."""
    with backend():
        raw = client().lrange(keys.health_history(queue), 0, limit - 1)
    return [json.loads(entry) for entry in raw]


def roll_up_hours(queue: str, *, now: int) -> int:
    """Add the minute buckets of finished hours into hourly hashes; returns minutes rolled.

    Each minute is rolled once (``keys.stats_rolled`` remembers the last one);
    the first run starts two hours back, as far as minute buckets live.

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    cli, current_hour, rolled = client(), now // 3_600_000, 0
    with backend():
        last = int(cli.get(keys.stats_rolled(queue)) or (current_hour - 2) * 60 - 1)
        for minute in range(last + 1, current_hour * 60):
            bucket = cli.hgetall(keys.stats_minute(queue, minute))
            if bucket:
                hourly = keys.stats_hour(queue, minute // 60)
                pipe = cli.pipeline()
                for field, value in bucket.items():
                    pipe.hincrby(hourly, field, int(value))
                pipe.expire(hourly, HOURLY_TTL_S)
                pipe.set(keys.stats_rolled(queue), minute)
                pipe.execute()
                rolled += 1
        cli.set(keys.stats_rolled(queue), current_hour * 60 - 1)
    return rolled


def hourly_stats(queue: str, hours: list[int]) -> dict[int, dict[str, int]]:
    """The hourly hashes of ``hours`` (hours since the epoch) that exist, by hour."""
    with backend():
        pipe = client().pipeline(transaction=False)
        for hour in hours:
            pipe.hgetall(keys.stats_hour(queue, hour))
        rows = pipe.execute()
    return {hour: {k.decode(): int(v) for k, v in row.items()}
            for hour, row in zip(hours, rows, strict=True) if row}


def last_rolled_minute(queue: str) -> int | None:
    """The last minute (since the epoch) rolled into an hourly hash, or None before the first."""
    with backend():
        value = client().get(keys.stats_rolled(queue))
    return None if value is None else int(value)
