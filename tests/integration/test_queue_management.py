"""create/destroy of queue types and the management verbs of ``manage.py jobqueue``."""

from __future__ import annotations

import json
from io import StringIO

import pytest
import redis
from django.core.management import CommandError, call_command

from deadletter.models import AuditEvent
from queues import registry
from queues.exceptions import (
    ConfigurationError,
    QueueNotEmpty,
    QueueTypeAlreadyRegistered,
    QueueTypeNotFound,
)
from queues.jobs import enqueue
from queues.ops.manager import create_queue, destroy_queue, pause_queue, queue_status
from queues.store import keys

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("jobqueue", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_validates_and_refuses_duplicates(r: redis.Redis) -> None:
    spec = create_queue("reports", {"default_attempts": 5, "max_workers": 4}, actor="ops")
    assert (spec.default_options.attempts, spec.max_workers) == (5, 4)
    with pytest.raises(QueueTypeAlreadyRegistered):
        create_queue("reports")
    with pytest.raises(ConfigurationError, match="min_workers"):
        create_queue("bad", {"min_workers": 5, "max_workers": 1})
    with pytest.raises(ConfigurationError, match="unknown queue type fields"):
        create_queue("bad", {"colour": "red"})
    with pytest.raises(ConfigurationError, match="name"):
        create_queue("Bad Name")
    assert AuditEvent.objects.filter(action="create_queue", target_id="reports").count() == 1


def test_destroy_refuses_while_jobs_wait_then_removes_everything(r: redis.Redis) -> None:
    enqueue("photo-processing", "t-echo", {"value": 1})
    with pytest.raises(QueueNotEmpty, match="1 waiting"):
        destroy_queue("photo-processing")
    assert destroy_queue("photo-processing", force=True, actor="ops") >= 3
    assert not list(r.scan_iter(match=f"{keys.queue_base('photo-processing')}*"))
    assert r.llen("photo-processing") == 0
    with pytest.raises(QueueTypeNotFound):
        registry.get("photo-processing")
    assert AuditEvent.objects.get(action="destroy_queue").details["forced"] is True


def test_management_verbs(r: redis.Redis) -> None:
    run("create", "exports", "--config", json.dumps({"default_attempts": 2}))
    assert registry.get("exports").default_options.attempts == 2
    run("pause", "exports")
    assert queue_status("exports").is_paused
    assert "released 0 parked jobs" in run("resume", "exports")
    assert json.loads(run("status", "exports"))["is_paused"] is False
    assert "No workers." in run("workers")
    assert "destroyed exports" in run("destroy", "exports")
    job = run("recurring", "add", "photo-processing", "t-echo", "*/5 * * * *", '{"value": 1}')
    recurring_id = job.split()[1].rstrip(":")
    assert "t-echo '*/5 * * * *'" in run("recurring", "list")
    assert f"cancelled recurring {recurring_id}" in run("recurring", "cancel", recurring_id)


@pytest.mark.parametrize(("args", "message"), [
    (("pause", "nope"), "Queue type 'nope' is not registered"),
    (("create", "x", "--config", "{oops"), "--config is not strict JSON"),
    (("pause-worker", "nobody@host"), "Worker 'nobody@host' not found"),
    (("scale", "nope", "2"), "Queue type 'nope' is not registered"),
    (("recurring", "add", "photo-processing", "t-echo", "99 * * * *", '{"value": 1}'),
     "not a valid minute"),
    (("recurring", "cancel"), "recurring add QUEUE NAME CRON"),
])
def test_bad_management_input(r: redis.Redis, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_pause_is_audited(r: redis.Redis) -> None:
    pause_queue("batch-processing", actor="cli:test")
    event = AuditEvent.objects.get(action="pause")
    assert (event.actor, event.queue) == ("cli:test", "batch-processing")
