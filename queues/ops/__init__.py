"""The operator's room: what runs queues rather than jobs.

``manager`` (create, pause, resume, clean, destroy, status; DESIGN §5 names are
re-exported by ``queues.manager``), ``scheduling`` and ``beat`` (recurring jobs and
the beat scheduler that enqueues them), ``maintenance`` (the maintenance queue's
jobs), ``health`` and ``health_history`` (queue health, its history and alerts),
``stats`` (rates and wait times), ``metrics`` (the Prometheus exposition).

It imports ``queues.jobs``, the store and the shared vocabulary, never
``queues.http``; the web layer and the CLI call into it.
"""
