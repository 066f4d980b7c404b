"""The ``queues`` app: queue types, jobs and their life, run on Redis by Celery.

Rooms, each importing only the rooms below it (``tests/test_architecture.py``):

- ``store/``: Redis. The only code that names keys or calls Redis; the Lua transitions.
- ``jobs/``: a job's life: declare (``@job``), enqueue, claim, run, retry, recover, fail.
  ``queues.jobs`` itself is the job API.
- ``ops/``: running queues: management, recurring jobs and beat, maintenance, health,
  stats, metrics.
- ``http/``: the ops API, its auth, the probes.

Beside them, the vocabulary every room shares: ``conf`` (settings), ``exceptions``,
``signals``, ``options`` (job options), ``registry`` (the queue-type snapshot),
``models``, ``logcontext``; and the entry points: ``apps``, ``admin``, ``management/``,
and ``manager``, ``scheduling``, ``health``, which keep the names of DESIGN §5 where
callers import them.
"""
