"""Starts the test session's own ``redis-server`` on a free port.

Loaded with ``-p tests.redis_plugin`` so that it runs before pytest-django
imports the settings: ``REDIS_URL`` then points every part of the suite
(enqueue, in-process workers, subprocess workers) at this server, never at
the machine's Redis on 6379. Tests restart it through ``RedisServer.restart``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server with AOF on, in a temporary directory."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise pytest.UsageError(
                "redis-server is not on PATH; install it (Debian: apt-get install redis-server)"
                " so the test suite can start its own Redis")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="jq-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.dir),
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def crash_and_restart(self) -> None:
        """SIGKILL the server (no shutdown, no final fsync), then start it on the same port."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
        self.start()


SERVER: RedisServer | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    global SERVER
    SERVER = RedisServer()
    SERVER.start()
    os.environ["REDIS_URL"] = SERVER.url
    # A file, not SQLite's in-memory default, so subprocess workers share the test database.
    os.environ.setdefault("DATABASE_TEST_NAME", str(SERVER.dir / "test-db.sqlite3"))
    # Jobs used by the tests, importable by subprocess workers too.
    os.environ["JOB_MODULES"] = "coordinator_project.sample_jobs,tests.fixtures_tasks"
    # Tests mint their own ops-API tokens (tests.conftest.bearer).
    os.environ.setdefault("JWT_SECRET", "test-secret-with-enough-length-for-hs256")


def pytest_unconfigure(config: pytest.Config) -> None:
    if SERVER is not None:
        SERVER.stop()
        shutil.rmtree(SERVER.dir, ignore_errors=True)
