"""Typed, lazy access to the coordinator's settings.

``settings.py`` reads the environment into ``COORDINATOR_*`` settings; this
module looks them up on every access so ``override_settings`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings


class LazySettings:
    """Upper-case attributes are defaults; ``<prefix><NAME>`` in Django settings wins."""

    prefix = "COORDINATOR_"

    def __getattribute__(self, name: str) -> Any:
        if name.isupper():
            default = super().__getattribute__(name)
            return getattr(django_settings, f"{self.prefix}{name}", default)
        return super().__getattribute__(name)


class Settings(LazySettings):
    """Defaults of every ``COORDINATOR_<NAME>`` setting, read on access."""

    REDIS_URL: str = "redis://localhost:6379/0"
    # Redis Sentinel: (host, port) of each sentinel and the master's name; () for none.
    REDIS_SENTINELS: tuple[tuple[str, int], ...] = ()
    REDIS_SENTINEL_MASTER: str = ""
    REDIS_SENTINEL_PASSWORD: str = ""
    ENQUEUE_DURABILITY: str = "primary"  # or "replica": WAIT for one replica
    ENQUEUE_REPLICA_TIMEOUT: int = 1000  # ms
    REDIS_KEY_PREFIX: str = "photo-queue:"
    DEFAULT_JOB_ATTEMPTS: int = 3
    DEFAULT_JOB_BACKOFF_DELAY: int = 2000
    DEFAULT_JOB_PRIORITY: int = 0
    DEFAULT_WORKER_CONCURRENCY: int = 1
    WORKER_STALLED_INTERVAL: int = 30000
    WORKER_RETRY_PROCESS_DELAY: int = 5000
    MAX_JOB_DATA_SIZE: int = 1048576
    MAX_JOB_AGE: int = 3600000
    ENABLE_RATE_LIMITING: bool = True
    MAX_JOBS_PER_MINUTE: int = 1000
    ENABLE_METRICS_COLLECTION: bool = True
    METRICS_COLLECTION_INTERVAL: int = 30000
    ENABLE_HEALTH_CHECKS: bool = True
    HEALTH_CHECK_INTERVAL: int = 60000
    ENABLE_AUTO_SCALING: bool = True
    AUTO_SCALING_CHECK_INTERVAL: int = 30000
    SCALING_COOLDOWN_PERIOD: int = 300000
    WORKER_HEARTBEAT_INTERVAL: int = 5000
    WORKER_STALE_AFTER: int = 300000
    WORKER_STUCK_AFTER: int = 60000  # ms: a live worker taking no job while work waits
    WORKER_PROBE_PORT: int = 0  # a worker's /health and /ready (workers.probe); 0: none
    REGISTRY_REFRESH_INTERVAL: int = 5000
    JOB_LOG_LIMIT: int = 1000
    JWT_SECRET: str = ""
    JWT_PUBLIC_KEY: str = ""
    JWT_PRIVATE_KEY: str = ""
    JWT_ISSUER: str = "job-queue-coordinator"
    JWT_AUDIENCE: str = "job-queue-coordinator-api"
    METRICS_REQUIRE_TOKEN: bool = False


settings = Settings()
