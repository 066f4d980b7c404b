"""Redis lists that hold what could not go where it belonged, for a human or a retry.

- terminal failures waiting for the SQL database (``deadletter.recording``);
- per queue, failures the database refused as rows (the dead-letter quarantine);
- per queue, broker items that were not valid messages (``queues.store.transport``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from queues.store import backend, client, keys, text

# --- Dead letters on their way to SQL ---------------------------------------------
# Terminal failures wait in one list while the database is unreachable, and go to
# a per-queue quarantine when the database refused them as rows (deadletter.recording).

def keep_pending_dead_letter(item: str) -> None:
    """Append one failure (JSON) to the list written once the database is back."""
    with backend():
        client().rpush(keys.pending_dead_letters(), item)


def pending_dead_letters(limit: int) -> list[str]:
    """The oldest ``limit`` pending failures, oldest first (they stay until trimmed)."""
    with backend():
        return [text(raw) for raw in client().lrange(keys.pending_dead_letters(), 0, limit - 1)]


def pending_dead_letter_count() -> int:
    with backend():
        return int(client().llen(keys.pending_dead_letters()))


def trim_pending_dead_letters(count: int) -> None:
    """Drop the ``count`` oldest pending failures (producers append at the other end)."""
    with backend():
        client().ltrim(keys.pending_dead_letters(), count, -1)


@contextlib.contextmanager
def pending_flush_lock(ttl_s: int = 60) -> Iterator[bool]:
    """Whether this caller may flush the pending list now; one flusher at a time."""
    with backend():
        held = bool(client().set(keys.pending_flush_lock(), "1", nx=True, ex=ttl_s))
    try:
        yield held
    finally:
        if held:
            with backend():
                client().delete(keys.pending_flush_lock())


def count_dead_letter(queue: str, job_name: str) -> None:
    """Count one dead-letter row written, in the queue's stats hash (``jobs_dead_letter_total``).

    Raises:
        BackendUnavailable: Redis is unreachable.
    """
    with backend():
        pipe = client().pipeline(transaction=False)
        pipe.hincrby(keys.stats(queue), "dead_lettered", 1)
        pipe.hincrby(keys.stats(queue), f"dead_lettered|{job_name}", 1)
        pipe.execute()


def quarantine_dead_letter(queue: str, entry: str) -> int:
    """Append one unwritable failure (JSON) to the queue's quarantine; returns its length."""
    with backend():
        return int(client().rpush(keys.dead_letter_quarantine(queue), entry))


def quarantined_dead_letters(queue: str, limit: int | None = 100) -> list[str]:
    """The queue's quarantined failures, oldest first (``limit=None``: all of them)."""
    with backend():
        items = client().lrange(keys.dead_letter_quarantine(queue), 0,
                                -1 if limit is None else limit - 1)
    return [text(raw) for raw in items]


def quarantined_dead_letter_count(queue: str) -> int:
    with backend():
        return int(client().llen(keys.dead_letter_quarantine(queue)))


def release_quarantined_dead_letter(queue: str, entry: str) -> bool:
    """Remove one quarantined entry (after it was written); False if it was not there."""
    with backend():
        return bool(client().lrem(keys.dead_letter_quarantine(queue), 1, entry))


# --- Broker items that were not messages (queues.store.transport) -------------------------
MESSAGE_QUARANTINE_MAX = 10_000  # newest kept: a flood of garbage must not fill Redis


def quarantine_message(queue: str, entry: str) -> int:
    """Keep one malformed broker item (JSON) in the queue's message quarantine; its length."""
    key = keys.message_quarantine(queue)
    with backend():
        pipe = client().pipeline(transaction=True)
        pipe.rpush(key, entry)
        pipe.ltrim(key, -MESSAGE_QUARANTINE_MAX, -1)
        pipe.llen(key)
        return int(pipe.execute()[-1])


def quarantined_message_count(queue: str) -> int:
    with backend():
        return int(client().llen(keys.message_quarantine(queue)))


def quarantined_messages(queue: str, limit: int = 100) -> list[str]:
    """The queue's quarantined broker items, oldest first."""
    with backend():
        return [text(raw) for raw in client().lrange(keys.message_quarantine(queue), 0,
                                                     limit - 1)]
