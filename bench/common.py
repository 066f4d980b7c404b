"""Pieces the benchmarks share: a per-process Redis client and stopping a subprocess."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import redis

_clients: dict[int, redis.Redis] = {}


def redis_client() -> redis.Redis:
    """One plain Redis client per process (a forked pool child makes its own)."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _clients[pid]


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait up to 30 s, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def configure(env: dict[str, str], jobs_module: str) -> None:
    """Environment for this process and its workers, then migrate and ``django.setup()``."""
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "coordinator_project.settings"})
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, check=True)
    import django

    django.setup()
    importlib.import_module(jobs_module)  # after the settings loaded the Celery app
