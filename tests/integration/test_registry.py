"""The queue-type registry: the seed's built-in types, admin validation."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from queues import registry
from queues.exceptions import QueueTypeNotFound
from queues.models import QueueType

pytestmark = pytest.mark.django_db


def test_builtin_types_exist_with_the_seeds_values() -> None:
    photo = registry.get("photo-processing")
    assert photo.job_types == ("process-photo", "generate-thumbnails", "extract-metadata")
    assert photo.default_options.attempts == 3
    assert photo.default_options.backoff == {"type": "exponential", "delay": 2000,
                                             "max_delay": 300000}
    assert (photo.default_options.remove_on_complete, photo.default_options.remove_on_fail) == (
        100, 50)
    assert (photo.stalled_interval_ms, photo.max_stalled_count) == (30000, 1)
    assert (photo.min_workers, photo.max_workers, photo.scaling_threshold) == (2, 10, 50)
    batch = registry.get("batch-processing")
    assert (batch.default_options.attempts, batch.stalled_interval_ms) == (2, 60000)
    maint = registry.get("maintenance")
    assert maint.default_options.backoff["type"] == "fixed"
    assert maint.job_types == ("cleanup-orphans", "consistency-check", "metrics-aggregation")
    with pytest.raises(QueueTypeNotFound):
        registry.get("nope")


def test_saving_a_queue_type_refreshes_the_snapshot() -> None:
    registry.get("photo-processing")
    QueueType.objects.create(name="reports", display_name="Reports")
    assert registry.get("reports").default_options.attempts == 3


@pytest.fixture
def admin_client() -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _form(**overrides: Any) -> dict[str, Any]:
    form = {
        "name": "thumbnails", "display_name": "Thumbnails", "description": "",
        "job_types": "[]", "default_attempts": 3, "backoff_type": "exponential",
        "backoff_delay_ms": 1000, "backoff_max_delay_ms": 60000, "remove_on_complete": "100",
        "remove_on_fail": "50", "default_priority": 0, "stalled_interval_ms": 30000,
        "retry_process_delay_ms": 5000, "max_stalled_count": 1, "concurrency": 1,
        "min_workers": 1, "max_workers": 3, "scaling_threshold": 10, "cleanup_enabled": "on",
        "completed_job_age_ms": 86400000, "failed_job_age_ms": 604800000,
        "cleanup_interval_ms": 3600000, "dead_letter_archive_after_days": 0,
        "dead_letter_purge_after_days": 90,
    }
    form.update(overrides)
    return form


ADD_URL = "/admin/queues/queuetype/add/"


def test_admin_creates_a_valid_queue_type(admin_client: Client) -> None:
    response = admin_client.post(ADD_URL, _form())
    assert response.status_code == 302, response.content[:2000]
    assert registry.get("thumbnails").max_workers == 3


@pytest.mark.parametrize(("overrides", "message"), [
    ({"backoff_type": "linear"}, "Select a valid choice"),
    ({"min_workers": 5, "max_workers": 2}, "Minimum workers cannot exceed maximum workers"),
    ({"backoff_delay_ms": -1}, "greater than or equal to 0"),
    ({"default_priority": 12}, "Priority is 0 (runs first) to 9"),
    ({"remove_on_fail": '"lots"'}, "Use true, false or a non-negative number"),
    ({"name": "Bad Name!"}, "Lower-case letters"),
    ({"job_types": '"not-a-list"'}, "Job types must be a list"),
])
def test_admin_form_errors(admin_client: Client, overrides: dict[str, Any], message: str) -> None:
    response = admin_client.post(ADD_URL, _form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not QueueType.objects.filter(name="thumbnails").exists()


def test_admin_cannot_delete_rows_behind_destroy_queue(admin_client: Client) -> None:
    row = QueueType.objects.get(name="maintenance")
    response = admin_client.post(f"/admin/queues/queuetype/{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert QueueType.objects.filter(name="maintenance").exists()


def test_admin_destroy_action_goes_through_destroy_queue(admin_client: Client) -> None:
    from deadletter.models import AuditEvent
    from queues.jobs import enqueue

    enqueue("photo-processing", "t-echo", {"value": 1})
    busy, idle = (QueueType.objects.get(name=n) for n in ("photo-processing", "maintenance"))
    page = admin_client.post("/admin/queues/queuetype/", {
        "action": "destroy", "_selected_action": [busy.pk, idle.pk], "post": "yes"}, follow=True)
    text = page.content.decode()
    assert "still has jobs (1 waiting)" in text and "Destroyed maintenance." in text
    assert set(QueueType.objects.values_list("name", flat=True)) == {
        "photo-processing", "batch-processing"}
    assert AuditEvent.objects.filter(action="destroy_queue", target_id="maintenance").exists()
