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
    assert (maint.default_options.backoff or {})["type"] == "fixed"
    assert maint.job_types == ("cleanup-orphans", "consistency-check", "metrics-aggregation")
    with pytest.raises(QueueTypeNotFound):
        registry.get("nope")


def test_saving_a_queue_type_refreshes_the_snapshot() -> None:
    registry.get("photo-processing")
    QueueType.objects.create(name="reports", display_name="Reports", default_attempts=4)
    reports = registry.get("reports")
    assert reports.default_options.attempts == 4
    # Created without values, a queue type leaves them to the globals (DEFAULT_JOB_*).
    assert (reports.default_options.priority, reports.concurrency) == (None, None)
    assert "delay" not in (reports.default_options.backoff or {})


def test_builtin_types_inherit_the_global_priority_the_seed_does_not_set() -> None:
    assert {registry.get(name).default_options.priority for name in registry.BUILTIN_QUEUE_TYPES
            } == {None}
    assert [registry.get(name).retry_process_delay_ms for name in (
        "photo-processing", "batch-processing", "maintenance")] == [5000, 10000, 30000]


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


def test_admin_leaves_empty_job_options_to_the_globals(admin_client: Client) -> None:
    empty = dict.fromkeys(("default_attempts", "backoff_delay_ms", "default_priority",
                           "concurrency"), "")
    response = admin_client.post(ADD_URL, _form(**empty))
    assert response.status_code == 302, response.content[:2000]
    row = QueueType.objects.get(name="thumbnails")
    assert (row.default_attempts, row.backoff_delay_ms, row.default_priority,
            row.concurrency) == (None, None, None, None)
    listing = admin_client.get("/admin/queues/queuetype/").content.decode()
    assert "(global default)" in listing


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


# --- job_types: the job names a queue type accepts ----------------------------------------

def test_a_listed_queue_type_refuses_other_declared_jobs_and_records_nothing(
        client: Client) -> None:
    from queues.exceptions import UnknownJobType
    from queues.jobs import enqueue
    from queues.ops import manager
    from tests import precedence_jobs as pj
    from tests.conftest import bearer

    manager.create_queue(pj.OWN, {"job_types": ["plain"]})
    with pytest.raises(UnknownJobType, match=r"accepts only the job types \['plain'\]"):
        enqueue(pj.OWN, "declared", {})
    with pytest.raises(UnknownJobType):
        pj.declared.delay()
    response = client.post(f"/queues/{pj.OWN}/jobs", {"name": "declared", "data": {}},
                           content_type="application/json", headers=bearer("queues:enqueue"))
    assert response.status_code == 422 and "plain" in response.content.decode()
    assert sum(manager.store_counts(pj.OWN).values()) == 0
    assert enqueue(pj.OWN, "plain", {}).created


def test_an_empty_list_accepts_every_declared_job() -> None:
    from queues.jobs import enqueue
    from queues.ops import manager
    from tests import precedence_jobs as pj

    manager.create_queue(pj.OWN)
    assert [enqueue(pj.OWN, name, {}).created for name in ("plain", "declared")] == [True, True]


def test_builtin_types_accept_every_job_declared_on_them() -> None:
    from queues.jobs import enqueue

    assert "clean-queue" not in registry.get("maintenance").job_types
    assert enqueue("maintenance", "clean-queue", {}).created
    assert enqueue("photo-processing", "t-echo", {"value": 1}).created
