"""Fixtures: a clean private Redis per test, in-process and subprocess workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis

from queues import registry, store
from tests import redis_plugin

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_server() -> redis_plugin.RedisServer:
    assert redis_plugin.SERVER is not None
    return redis_plugin.SERVER


@pytest.fixture(autouse=True)
def clean_redis(redis_server: redis_plugin.RedisServer) -> Iterator[redis.Redis]:
    """Every test starts and ends with an empty Redis (rq's RQTestCase does the same)."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    registry.invalidate()
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def r(clean_redis: redis.Redis) -> redis.Redis:
    return clean_redis


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


# redis-py types sync replies as ``bytes | str``; the test clients never set
# decode_responses, so they are bytes. These helpers keep that knowledge in one place.
def text(raw: bytes | str) -> str:
    """One Redis reply (a key, member or field value) as ``str``."""
    return raw.decode() if isinstance(raw, bytes) else raw


def as_int(raw: bytes | str | None) -> int:
    """A Redis counter reply as ``int``; a missing key fails the test rather than counting 0."""
    assert raw is not None, "no such key or field"
    return int(raw)


def texts(reply: Iterable[object]) -> list[str]:
    """The members of a list reply (LRANGE, ZRANGE without scores) as ``str``."""
    members = []
    for member in reply:
        assert isinstance(member, bytes | str), f"not a plain member: {member!r}"
        members.append(text(member))
    return members


def text_map(reply: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """An HGETALL reply as ``str`` fields and values."""
    return {text(field): text(value) for field, value in reply.items()}


@pytest.fixture
def builtin_queue_types(transactional_db: None) -> None:
    """Transactional tests truncate tables, data-migration rows included: restore them."""
    import importlib

    from queues.models import QueueType

    migration = importlib.import_module("queues.migrations.0002_builtin_queue_types")
    for row in migration.BUILTIN:
        QueueType.objects.update_or_create(name=row["name"], defaults=row)
    registry.invalidate()


def resilience_queue_type(*, stalled_interval_ms: int, max_stalled_count: int) -> Any:
    """The tests' ``resilience`` queue type, with short locks so lost workers are found fast."""
    from queues.models import QueueType

    return QueueType.objects.create(
        name="resilience", display_name="Resilience", stalled_interval_ms=stalled_interval_ms,
        max_stalled_count=max_stalled_count, remove_on_complete=False, remove_on_fail=False)


@pytest.fixture
def resilience_queue_of_30s(db: None) -> Any:
    """The ``resilience`` queue type with 30 s locks: tests that play the worker themselves."""
    return resilience_queue_type(stalled_interval_ms=30000, max_stalled_count=1)


@pytest.fixture
def inprocess_worker(builtin_queue_types: None) -> Iterator[Callable[..., Any]]:
    """Start a solo Celery worker in a thread of this process (fast)."""
    from celery.contrib.testing.worker import start_worker

    from coordinator_project.celery import app

    started: list[Any] = []

    def start(queues: tuple[str, ...] = ("photo-processing",), **kwargs: Any) -> Any:
        ctx = start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                           queues=list(queues), loglevel="WARNING", **kwargs)
        worker = ctx.__enter__()
        started.append(ctx)
        return worker

    yield start
    for ctx in reversed(started):
        ctx.__exit__(None, None, None)


class WorkerProcess:
    """A ``celery worker`` subprocess (for tests where the process boundary matters)."""

    def __init__(self, queues: tuple[str, ...], pool: str, concurrency: int | None,
                 name: str, env: dict[str, str]) -> None:
        self.hostname = f"{name}@%h"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"jq-{name}-{os.getpid()}.log"
        # concurrency None: no -c, so the worker sizes its pool as a plain `celery worker`.
        size = [] if concurrency is None else ["-c", str(concurrency)]
        cmd = [sys.executable, "-m", "celery", "-A", "coordinator_project", "worker",
               "-Q", ",".join(queues), "-P", pool, *size, "-n", self.hostname,
               "--without-gossip", "--without-mingle", "-l", "INFO"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env},
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_for(lambda: b"ready." in self.log.read_bytes() or self.proc.poll() is not None,
                 timeout)
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def worker_database_url() -> str:
    """The URL of the database this test session uses (the test database)."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker_process(django_db_setup: None,
                   django_db_blocker: Any) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory for subprocess workers (on the test database); all are stopped after the test."""
    workers: list[WorkerProcess] = []
    with django_db_blocker.unblock():
        database_url = worker_database_url()

    def start(queues: tuple[str, ...] = ("photo-processing",), *, pool: str = "prefork",
              concurrency: int | None = 2, name: str | None = None,
              env: dict[str, str] | None = None,
              ready: bool = True) -> WorkerProcess:
        proc = WorkerProcess(queues, pool, concurrency, name or f"w{len(workers)}",
                             {"DATABASE_URL": database_url, **(env or {})})
        workers.append(proc)
        if ready:
            proc.wait_ready()
        return proc

    yield start
    for proc in workers:
        proc.stop()


def bearer(*scopes: str, sub: str = "test-client") -> dict[str, str]:
    """Headers with a valid ops-API token for ``scopes`` (default: view and manage)."""
    from queues.http import auth

    token = auth.mint(sub, list(scopes or ("queues:view", "queues:manage")))
    return {"Authorization": f"Bearer {token}"}


__all__ = ["as_int", "bearer", "store", "text", "text_map", "texts", "wait_for"]


def staff_user(app_label: str, *perms: str) -> Any:
    """A new staff user (password ``pw``) holding ``perms``: codenames of ``app_label``,
    or ``"app_label.codename"`` for another app's."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(f"staff{User.objects.count()}", password="pw", is_staff=True)
    wanted = [perm.split(".", 1) if "." in perm else [app_label, perm] for perm in perms]
    granted = [Permission.objects.get(content_type__app_label=app, codename=codename)
               for app, codename in wanted]
    user.user_permissions.set(granted)
    return user


def staff_client(app_label: str, *perms: str) -> Any:
    """A test client logged in as a new ``staff_user``."""
    from django.test import Client

    client = Client()
    client.force_login(staff_user(app_label, *perms))
    return client
