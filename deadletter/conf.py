"""Typed, lazy settings of the dead-letter app (``DEADLETTER_<NAME>``)."""

from __future__ import annotations

from queues.conf import LazySettings


class Settings(LazySettings):
    prefix = "DEADLETTER_"

    FAILURE_ALERT_THRESHOLD: int = 10  # seed checkFailurePatterns: more than 10 ...
    FAILURE_ALERT_WINDOW: int = 300  # ... within 5 minutes (seconds)
    PURGE_BATCH: int = 1000


settings = Settings()
