"""The Lua scripts behind every job transition, read from ``queues/store/lua/``.

Each transition is one script, so it is atomic across any number of workers.
Job store and Celery broker share one Redis (DESIGN §4a), so a script can write
the job record *and* push the prebuilt Celery message: a job is never recorded
without a message, nor published without a record.

Each ``<name>.lua`` opens with a header giving its KEYS, ARGV and Returns. All
values arrive as strings; times are integer milliseconds since the epoch.
Besides the state, each script counts what it did in the queue's stats hash,
per job type as ``<metric>|<job name>`` (and, for processing time, one
histogram bucket ``duration|<job name>|<upper bound ms>`` per finished job):
the Prometheus collector reads these, so metrics are cluster-wide and cost
no extra round trip.
Job keys are derived inside the scripts from the queue's key base
(``keys.queue_base``), which carries the queue's hash tag.

Every script that pushes a job's message also sets the job's score in the
waiting index: ``now`` for an ``LPUSH`` (the producers' end), below every
waiting job for an ``RPUSH`` (the end kombu pops). So, per broker list, the
scores rise from the popping end, which is how ``queues.store.broker`` tells a
message that left its list from one still in it.

A job fails in one Lua function, ``fail_job`` (``fail_job.lua``), which the
scripts that can fail a job get prepended to their own source: why a prepended
library and not a Redis 7 FUNCTION is written at the top of that file. Every failed
attempt, retried or final, is noted in the record's ``attempt_log`` by ``note_attempt``
(``note_attempt.lua``, prepended the same way). A queue's flow control (rate
limits, concurrency, groups) is the library ``gate.lua``, prepended to every
script that makes a job runnable, starts it or ends it; parent-child flows are
``flow.lua``, prepended to every script that ends a job.
"""

from __future__ import annotations

import functools
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"

# script -> the library files put before its own source, in this order
_ENDS_A_JOB = ("note_attempt", "fail_job", "gate", "flow")
PRELUDES: dict[str, tuple[str, ...]] = {
    "claim": _ENDS_A_JOB,
    "finish": _ENDS_A_JOB,
    "recover": _ENDS_A_JOB,
    "cancel": _ENDS_A_JOB,
    "enqueue_flow": ("gate",),
    "retry": ("note_attempt", "gate"),
    **{name: ("gate",) for name in ("enqueue", "enqueue_dedup", "promote", "promote_job",
                                     "change_priority", "gate_return", "gate_pump")},
}


def _read(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")


@functools.cache
def source(name: str) -> str:
    """The full source of script ``name`` (its preludes first), read once per process.

    Raises:
        FileNotFoundError: there is no ``lua/<name>.lua`` (or no file for a prelude).
    """
    return "\n".join([*(_read(lib) for lib in PRELUDES.get(name, ())), _read(name)])
