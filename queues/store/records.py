"""``JobRecord``: the fields of a job record that the coordinator acts on, typed.

The record in Redis is a hash of strings written by the enqueue script and
changed by the other scripts. ``queues.store.read_record`` reads the fields
below in one round trip; what a job's next message is built from (task,
payload, priority, trace and client ids, generation) and what decides a failed
attempt (options, attempts made and allowed) come from here, not from a field
list at each caller. What callers show of a job is ``queues.jobs.info.JobInfo``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The hash fields read, in the order of ``JobRecord``'s fields.
FIELDS = ("id", "queue", "name", "task", "state", "data", "priority", "gen", "trace_id",
          "client_id", "opts", "attempts_made", "max_attempts")


@dataclass(frozen=True)
class JobRecord:
    """One job as recorded in Redis, as far as its next message and its attempts go."""

    id: str
    queue: str
    name: str  # the job type's name within its queue
    task: str  # the Celery task name
    state: str
    data: str  # the payload as the JSON text recorded
    priority: int
    gen: int  # the generation of the job's current message
    trace_id: str
    client_id: str  # "" when the job has none
    opts: str  # the resolved options as JSON
    attempts_made: int
    max_attempts: int

    @property
    def options(self) -> dict[str, Any]:
        """The resolved options, decoded."""
        decoded: dict[str, Any] = json.loads(self.opts)
        return decoded

    @classmethod
    def from_values(cls, values: Sequence[str | None]) -> JobRecord | None:
        """The record from the values of ``FIELDS`` in order; None when it has no ``id``.

        An absent field reads as empty (0 for a number), except the ones the
        enqueue script may leave out: no options (``{}``), one attempt allowed.
        """
        raw = dict(zip(FIELDS, values, strict=True))
        if raw["id"] is None:
            return None
        return cls(
            id=raw["id"], queue=raw["queue"] or "", name=raw["name"] or "",
            task=raw["task"] or "", state=raw["state"] or "", data=raw["data"] or "",
            priority=int(raw["priority"] or 0), gen=int(raw["gen"] or 0),
            trace_id=raw["trace_id"] or "", client_id=raw["client_id"] or "",
            opts=raw["opts"] or "{}", attempts_made=int(raw["attempts_made"] or 0),
            max_attempts=int(raw["max_attempts"] or 1),
        )
