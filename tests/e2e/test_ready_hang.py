"""``/ready`` answers within a second when Redis or PostgreSQL hangs (SIGSTOP); ``/health``
touches neither.

A stopped server still completes TCP handshakes (the kernel does that), so a
client connects and then waits for an answer that never comes: the case that
connect errors and ``statement_timeout`` do not cover. Each test stops a
private server of its own, never the session's Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.test import Client, override_settings

from queues.http import probes
from tests import pg_cluster
from tests.conftest import wait_for
from tests.redis_plugin import RedisServer
from tests.webserver import running_web

BUDGET_S = 1.0


def _hangs(port: int) -> bool:
    """True when the server takes a connection but does not answer a PING."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        sock.settimeout(0.3)
        try:
            return not sock.recv(16)
        except TimeoutError:
            return True


@pytest.fixture
def stopped_redis() -> Iterator[RedisServer]:
    """A second private redis-server, SIGSTOPped; continued and removed afterwards."""
    server = RedisServer()
    server.start()
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield server
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def _timed_get(path: str) -> tuple[float, Any]:
    started = time.monotonic()
    response = Client().get(path)
    return time.monotonic() - started, response


@pytest.mark.django_db
def test_ready_answers_within_a_second_when_redis_hangs(stopped_redis: RedisServer) -> None:
    assert _hangs(stopped_redis.port)
    with override_settings(COORDINATOR_REDIS_URL=stopped_redis.url):
        elapsed, response = _timed_get("/ready")
    assert elapsed < BUDGET_S, f"/ready took {elapsed:.2f} s"
    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["redis"]
    assert body["checks"] == {"redis": "Redis did not answer within 0.5 s",
                              "database": "ok", "migrations": "ok"}


def test_liveness_touches_neither_redis_nor_the_database(stopped_redis: RedisServer) -> None:
    # No django_db mark: pytest-django makes any database access fail this test.
    with override_settings(COORDINATOR_REDIS_URL=stopped_redis.url):
        elapsed, response = _timed_get("/health")
    assert response.status_code == 200 and elapsed < 0.5
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_a_check_past_the_deadline_is_named_and_does_not_hold_the_answer(
        stopped_redis: RedisServer) -> None:
    with override_settings(COORDINATOR_REDIS_URL=stopped_redis.url):
        started = time.monotonic()
        report = probes.readiness(deadline_s=0.1)  # shorter than Redis's own 0.5 s timeout
        elapsed = time.monotonic() - started
    assert elapsed < 0.4
    assert report.failing == ["redis"]
    assert report.checks["redis"] == "Redis did not answer within 0.1 s"


@pytest.fixture
def postgres() -> Iterator[tuple[int, Path]]:
    """A private PostgreSQL cluster (tests.pg_cluster): its port and data directory."""
    with pg_cluster.running(prefix="jq-pg-hang-") as cluster:
        yield cluster


def _cluster_processes(data: Path) -> list[psutil.Process]:
    postmaster = psutil.Process(int((data / "postmaster.pid").read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


@pytest.mark.slow
def test_ready_answers_within_a_second_when_postgres_hangs(
        postgres: tuple[int, Path]) -> None:
    port, data = postgres
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/postgres"}
    with running_web(env) as web:
        body = web.get("/ready").json()
        # Reachable, never migrated: the database part is fine before the stop.
        assert body["checks"]["database"] == "ok" and body["failing"] == ["migrations"]
        [gunicorn_worker] = psutil.Process(web.proc.pid).children()
        threads_before = gunicorn_worker.num_threads()
        processes = _cluster_processes(data)
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        try:
            assert _hangs(port)
            for _ in range(2):  # a second probe is not held up by the first one's thread
                started = time.monotonic()
                response = web.get("/ready")
                elapsed = time.monotonic() - started
                assert elapsed < BUDGET_S, f"/ready took {elapsed:.2f} s"
                assert response.status == 503
                assert response.json()["failing"] == ["database", "migrations"]
                assert response.json()["checks"]["database"] == (
                    "the database did not answer within 0.75 s")
            # libpq's connect_timeout ends the abandoned checks while the server still hangs.
            wait_for(lambda: gunicorn_worker.num_threads() <= threads_before, timeout=10)
        finally:
            for process in processes:
                process.send_signal(signal.SIGCONT)
