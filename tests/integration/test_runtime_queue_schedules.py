"""A queue type made, edited or destroyed at runtime gets, changes or loses its
retention beat entries at once: from Python, HTTP, CLI and admin."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from deadletter import retention
from queues.models import QueueType
from queues.ops import manager
from tests.conftest import bearer

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db]
ADMIN = "/admin/queues/queuetype/"


def entries(queue: str) -> dict[str, tuple[int, bool]]:
    """``{entry name: (interval seconds, enabled)}`` of the queue's retention entries."""
    rows = PeriodicTask.objects.filter(name__in=retention.entry_names(queue))
    for row in rows:
        assert json.loads(row.kwargs) == {"queue": queue} and row.queue == "maintenance"
    return {row.name: (row.interval.every, row.enabled) for row in rows}


def expected(queue: str, interval_s: int, *, expire: bool = True) -> dict[str, tuple[int, bool]]:
    return {f"clean-queue {queue}": (interval_s, True),
            f"expire-dead-letters {queue}": (retention.DEAD_LETTER_CHECK_SECONDS, expire)}


def test_python_create_and_destroy(r: redis.Redis) -> None:
    manager.create_queue("reports", {"cleanup_interval_ms": 90_000,
                                     "dead_letter_purge_after_days": 0})
    assert entries("reports") == expected("reports", 90, expire=False)
    before = PeriodicTasks.last_change()
    manager.destroy_queue("reports")
    assert entries("reports") == {}
    assert PeriodicTasks.last_change() != before, "a running beat sees the change"
    assert entries("photo-processing") == expected("photo-processing", 3600), "others stay"


def test_http_create_and_destroy(r: redis.Redis) -> None:
    client = Client(headers=bearer("queues:manage"))
    created = client.post("/queues", {"name": "invoices",
                                      "config": {"cleanup_interval_ms": 120_000}},
                          content_type="application/json")
    assert created.status_code == 201
    assert entries("invoices") == expected("invoices", 120)
    refused = client.post("/queues", {"name": "bad", "config": {"cleanup_interval_ms": 10}},
                          content_type="application/json")
    assert refused.status_code == 422 and entries("bad") == {}, "a refused create makes none"
    assert client.delete("/queues/invoices").status_code == 200
    assert entries("invoices") == {}


def test_cli_create_and_destroy(r: redis.Redis) -> None:
    out = StringIO()
    call_command("jobqueue", "create", "exports", "--config", '{"cleanup_interval_ms": 300000}',
                 stdout=out)
    assert entries("exports") == expected("exports", 300)
    call_command("jobqueue", "destroy", "exports", stdout=out)
    assert entries("exports") == {}


def form_data(row: QueueType, **changes: Any) -> dict[str, str]:
    """What the admin form posts for ``row`` (unsaved or saved), with ``changes``."""
    data: dict[str, str] = {}
    for field in QueueType._meta.fields:
        if field.primary_key or not field.editable:
            continue
        value = changes.get(field.name, getattr(row, field.attname))
        if field.get_internal_type() == "JSONField":
            data[field.name] = json.dumps(value)
        elif isinstance(value, bool):
            if value:
                data[field.name] = "on"
        else:
            data[field.name] = "" if value is None else str(value)
    return data


def test_admin_add_edit_and_destroy(r: redis.Redis) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    added = client.post(f"{ADMIN}add/", form_data(
        QueueType(name="uploads", display_name="Uploads"), cleanup_interval_ms=60_000))
    assert added.status_code == 302, added.content.decode()[-2000:]
    assert entries("uploads") == expected("uploads", 60)
    row = QueueType.objects.get(name="uploads")
    changed = client.post(f"{ADMIN}{row.pk}/change/",
                          form_data(row, cleanup_interval_ms=7_200_000, cleanup_enabled=False))
    assert changed.status_code == 302, changed.content.decode()[-2000:]
    assert entries("uploads") == {"clean-queue uploads": (7200, False),
                                  "expire-dead-letters uploads": (
                                      retention.DEAD_LETTER_CHECK_SECONDS, True)}
    destroyed = client.post(ADMIN, {"action": "destroy", "_selected_action": [row.pk],
                                    "post": "yes"})
    assert destroyed.status_code == 302
    assert not QueueType.objects.filter(name="uploads").exists()
    assert entries("uploads") == {}
