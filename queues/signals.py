"""Signals the coordinator sends; other apps connect to them in ``AppConfig.ready()``."""

from __future__ import annotations

from django.dispatch import Signal

# Sent once, in the worker, when a job reaches the failed state for good
# (attempts exhausted, non-retryable error, expired, stalled too often).
# Arguments: queue, job_id, record (the job's final record, a dict of strings).
job_failed = Signal()
