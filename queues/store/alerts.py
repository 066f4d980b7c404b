"""Failure-alert windows in Redis: at most one alert per job type and window."""

from __future__ import annotations

from queues.store import backend, client, keys


def open_alert_window(queue: str, job_name: str, count: int, *, window_s: int) -> bool:
    """Open this job type's alert window unless one is open; True when this call opened it.

    The key lives ``window_s`` seconds and holds the failure count that opened it.
    """
    with backend():
        return bool(client().set(keys.failure_alert(queue, job_name), count, nx=True,
                                 ex=window_s))
