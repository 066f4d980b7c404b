"""Adds the running job's context to every log record (structured logs, seed §8).

Inside a job, records get ``queue``, ``job_id``, ``job_type``, ``trace_id`` and
``worker`` from the Celery request; outside one, the fields a caller passed in
``extra`` are kept and the rest are empty strings, so every JSON line has the
same keys.
"""

from __future__ import annotations

import logging

FIELDS = ("queue", "job_id", "job_type", "trace_id", "worker")


class JobContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from celery import current_task

        request = getattr(current_task, "request", None) if current_task else None
        found = {}
        if request is not None and getattr(request, "jq_job", None):
            found = {"queue": getattr(current_task, "job_queue", ""),
                     "job_id": request.jq_job, "job_type": getattr(current_task, "job_name", ""),
                     "trace_id": getattr(request, "jq_trace", "") or "",
                     "worker": request.hostname or ""}
        for name in FIELDS:
            if not getattr(record, name, None):
                setattr(record, name, found.get(name, ""))
        return True
