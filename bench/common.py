"""Pieces the benchmarks share: a per-process Redis client and stopping a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess

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
