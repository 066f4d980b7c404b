"""Dead-letter admin through Django's test client: review, actions, permissions, escaping."""

from __future__ import annotations

import pytest
import redis
from django.test import Client

from deadletter.models import AuditEvent, DeadLetter
from tests.conftest import staff_client
from tests.integration.test_deadletter_services import Q, record

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db]
LIST = "/admin/deadletter/deadletter/"


def staff(*perms: str) -> Client:
    return staff_client("deadletter", *perms)


@pytest.fixture
def operator() -> Client:
    return staff("view_deadletter", "requeue_deadletter", "archive_deadletter",
                 "purge_deadletter", "view_auditevent")


def test_list_filters_and_search(operator: Client, r: redis.Redis) -> None:
    record("alpha-1")
    record("beta-2", error="TimeoutError")
    page = operator.get(LIST).content.decode()
    assert "alpha-1" in page and "beta-2" in page and "LookupError" in page
    filtered = operator.get(LIST, {"error_type": "TimeoutError"}).content.decode()
    assert "beta-2" in filtered and "alpha-1" not in filtered
    searched = operator.get(LIST, {"q": "alpha"}).content.decode()
    assert "alpha-1" in searched and "beta-2" not in searched
    for query in ({"queue": Q}, {"reason": "max_attempts_exceeded"}, {"status": "open"}):
        assert operator.get(LIST, query).status_code == 200


def test_detail_escapes_payload_and_traceback(operator: Client, r: redis.Redis) -> None:
    row = record("xss", payload='{"caption": "<script>alert(1)</script>"}')
    page = operator.get(f"{LIST}{row.pk}/change/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;caption&quot;" in page  # pretty-printed JSON, escaped


def test_requeue_action_confirms_then_acts_and_audits(operator: Client, r: redis.Redis) -> None:
    rows = [record(f"rq-{n}") for n in range(3)]
    ids = [str(row.pk) for row in rows]
    confirm = operator.post(LIST, {"action": "requeue", "_selected_action": ids})
    assert confirm.status_code == 200 and "Are you sure?" in confirm.content.decode()
    assert DeadLetter.objects.requeueable().count() == 3, "nothing happens before confirming"
    done = operator.post(LIST, {"action": "requeue", "_selected_action": ids, "post": "yes",
                                "reason": "dependency fixed"}, follow=True)
    assert "3 dead letters requeued." in done.content.decode()
    assert DeadLetter.objects.filter(status="requeued").count() == 3
    assert AuditEvent.objects.filter(action="requeue", details__reason="dependency fixed",
                                     actor__startswith="staff").count() == 3
    # The audit log names the job each event touched, and finds it by job id.
    audit = operator.get("/admin/deadletter/auditevent/", {"q": "rq-1"}).content.decode()
    assert "rq-1" in audit and "rq-0" not in audit and "rq-2" not in audit


def test_archive_and_purge_actions(operator: Client, r: redis.Redis) -> None:
    a, b = record("ar-1"), record("ar-2")
    operator.post(LIST, {"action": "archive", "_selected_action": [a.pk], "post": "yes"})
    assert DeadLetter.objects.get(pk=a.pk).status == "archived"
    done = operator.post(LIST, {"action": "purge", "_selected_action": [a.pk, b.pk],
                                "post": "yes"}, follow=True)
    assert "2 dead letters purged." in done.content.decode()
    assert not DeadLetter.objects.exists()


def test_bulk_requeue_of_a_thousand_rows(operator: Client, r: redis.Redis) -> None:
    ids = [str(record(f"bulk-{n}").pk) for n in range(1000)]
    done = operator.post(LIST, {"action": "requeue", "_selected_action": ids, "post": "yes"},
                         follow=True)
    assert "1000 dead letters requeued." in done.content.decode()
    assert r.llen(f"{Q}\x06\x162") == 1000


def test_staff_without_permission_cannot_act(r: redis.Redis) -> None:
    row = record("guarded")
    viewer = staff("view_deadletter")
    page = viewer.get(LIST).content.decode()
    assert 'value="requeue"' not in page
    viewer.post(LIST, {"action": "requeue", "_selected_action": [row.pk], "post": "yes"})
    viewer.post(LIST, {"action": "purge", "_selected_action": [row.pk], "post": "yes"})
    assert DeadLetter.objects.get(pk=row.pk).status == "open"
    assert not AuditEvent.objects.exists()
    assert staff().get(LIST).status_code == 403


def test_audit_log_is_read_only(operator: Client, r: redis.Redis) -> None:
    row = record("audited")
    operator.post(LIST, {"action": "archive", "_selected_action": [row.pk], "post": "yes"})
    event = AuditEvent.objects.get()
    assert operator.get("/admin/deadletter/auditevent/").status_code == 200
    assert operator.get(f"/admin/deadletter/auditevent/{event.pk}/change/").status_code == 200
    assert operator.post(f"/admin/deadletter/auditevent/{event.pk}/delete/",
                         {"post": "yes"}).status_code == 403
    assert operator.get("/admin/deadletter/auditevent/add/").status_code == 403
