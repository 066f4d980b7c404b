"""Dead letters written by real workers, including through a database outage."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection

from deadletter.models import DeadLetter
from deadletter.services import requeue_dead_letter
from queues import registry
from queues.jobs import enqueue_many, get_job
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import as_int, wait_for

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db(transaction=True)]
Q = "photo-processing"


def test_terminal_failure_in_a_worker_writes_one_row(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    worker_process((Q,), concurrency=1)
    handle = t.always_fails.delay({"item": "photo-9"})
    assert handle.wait(15).state == "failed"
    row = wait_for(lambda: DeadLetter.objects.filter(job_id=handle.id).first())
    assert (row.error_type, row.error_message, row.reason) == (
        "LookupError", "cannot find photo-9", "max_attempts_exceeded")
    assert "LookupError" in row.traceback and row.payload == {"item": "photo-9"}
    again = requeue_dead_letter(row.pk, actor="test")
    assert get_job(Q, again.job_id).name == "t-always-fails"
    wait_for(lambda: DeadLetter.objects.filter(job_id=again.job_id).exists())
    second = DeadLetter.objects.get(job_id=again.job_id)
    assert second.previous_id == row.pk and as_int(r.get(t.runs_key(again.job_id))) == 1


@contextlib.contextmanager
def database_outage() -> Iterator[None]:
    """Make the test database unreachable for other processes, then bring it back."""
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        path = Path(settings["NAME"])
        away = path.with_suffix(".away")
        os.rename(path, away)  # a worker that reconnects now finds an empty file
        try:
            yield
        finally:
            for leftover in (path, Path(f"{path}-journal")):
                leftover.unlink(missing_ok=True)
            os.rename(away, path)
        return
    import psycopg

    admin_dsn = (f"host={settings['HOST']} port={settings['PORT'] or 5432} "
                 f"user={settings['USER']} dbname=postgres")
    name = settings["NAME"]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", [name])
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            connection.close()  # ours was terminated too; reconnect on next use


def test_failures_during_a_database_outage_are_written_when_it_is_back(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    worker_process((Q,), concurrency=1, env={"WORKER_HEARTBEAT_INTERVAL": "500"})
    registry.get(Q)  # this process enqueues from its snapshot; the outage is the worker's
    with database_outage():
        handles = enqueue_many(Q, "t-always-fails", [{"item": f"i{n}"} for n in range(5)])
        for handle in handles:
            assert handle.wait(20).state == "failed"
        wait_for(lambda: r.llen(keys.pending_dead_letters()) == 5)
    rows = wait_for(lambda: DeadLetter.objects.count() == 5 and DeadLetter.objects.all(),
                    timeout=30)
    assert {row.job_id for row in rows} == {h.id for h in handles}
    # The flush trims the pending list once the rows are written.
    wait_for(lambda: r.llen(keys.pending_dead_letters()) == 0)


def test_a_poison_dead_letter_does_not_block_the_ones_a_worker_writes_after_it(
        r: redis.Redis, builtin_queue_types: None, worker_process: Any) -> None:
    # A failure the database refuses as a row waits at the head of the pending list.
    poison = {"queue": Q, "job_id": "poison", "record": {
        "name": "t-always-fails", "data": '{"x": NaN}', "finished_at": "1"}}
    r.rpush(keys.pending_dead_letters(), json.dumps(poison))
    worker_process((Q,), concurrency=1)
    handles = enqueue_many(Q, "t-always-fails", [{"item": f"i{n}"} for n in range(3)])
    for handle in handles:
        assert handle.wait(20).state == "failed"
    rows = wait_for(lambda: DeadLetter.objects.count() == 3 and DeadLetter.objects.all())
    assert {row.job_id for row in rows} == {h.id for h in handles}
    # The flush trims the pending list once the rows are written.
    wait_for(lambda: r.llen(keys.pending_dead_letters()) == 0)
    [held] = r.lrange(keys.dead_letter_quarantine(Q), 0, -1)
    assert json.loads(held)["job_id"] == "poison"
