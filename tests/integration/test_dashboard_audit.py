"""The dashboard's Audit page through Django's test client: newest first, links to what
each event touched, filters, keyset paging, 400s, permission and escaping."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from deadletter import services
from deadletter.models import AuditEvent
from tests.conftest import staff_client
from tests.integration.test_dashboard_failures import XSS, dead
from tests.integration.test_deadletter_services import Q

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db]
PAGE = "/admin/dashboard/audit/"


@pytest.fixture
def viewer() -> Client:
    return staff_client("queues", "view_dashboard")


def rows(page: str) -> dict[int, str]:
    """Each event row's HTML by the event's id, in page order."""
    return {int(pk): row for pk, row in re.findall(
        r'<tr data-event="(\d+)"[^>]*>(.*?)</tr>', page, re.S)}


def ids(page: str) -> list[int]:
    return list(rows(page))


def event(action: str = "pause", **kw: Any) -> AuditEvent:
    """An audit event as the services write it (by default: alice paused ``Q``)."""
    fields: dict[str, Any] = {"target_type": "queue", "target_id": Q, "queue": Q, **kw}
    return services.audit(str(fields.pop("actor", "alice")), action, **fields)


def test_each_event_links_to_what_it_touched(viewer: Client, r: redis.Redis) -> None:
    letter = dead("dl-1", "photo 1 not found in 'x'")
    every, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(name="recurring:photo", task="x", interval=every)
    made = [
        event("cancel_job", target_type="job", target_id="job-7", job_id="job-7"),
        event("pause"),
        event("pause", target_id="retired", queue="retired"),
        event("requeue", target_type="dead_letter", target_id=letter.pk, job_id="dl-1"),
        event("requeue", target_type="dead_letter", target_id=999_999, job_id="purged"),
        event("pause_worker", target_type="worker", target_id="w1@host", queue=""),
        event("recurring_create", target_type="recurring", target_id=task.pk),
        event("recurring_cancel", target_type="recurring", target_id=task.pk + 1000),
    ]
    page = viewer.get(PAGE).content.decode()
    shown = rows(page)
    assert list(shown) == [e.pk for e in reversed(made)], "newest first"
    links = {e.pk: re.findall(r'<td class="jq-audit-target">.*?</td>', shown[e.pk], re.S)[0]
             for e in made}
    expected = [f"/admin/dashboard/queues/{Q}/jobs/job-7/", f"/admin/dashboard/queues/{Q}/",
                None, f"/admin/deadletter/deadletter/{letter.pk}/change/", None,
                "/admin/dashboard/workers/",
                f"/admin/django_celery_beat/periodictask/{task.pk}/change/", None]
    for made_event, url in zip(made, expected, strict=True):
        cell = links[made_event.pk]
        assert (f'href="{url}"' in cell) if url else "href" not in cell, cell
        assert html.escape(made_event.target_id) in cell
    assert 'id="jq-nav-audit"' in page


def test_details_are_compact_and_bulk_actions_list_their_jobs(viewer: Client) -> None:
    bulk = event("purge", deleted=25, **services.job_id_details(
        [f"job-{n}" for n in range(25)], 1500))
    single = event("scale", target=3, reason="load")
    shown = rows(viewer.get(PAGE).content.decode())
    assert "&quot;deleted&quot;: 25" in shown[bulk.pk] and "job_ids" not in shown[bulk.pk]
    assert "<code>job-0</code>, <code>job-1</code>" in shown[bulk.pk]
    assert "and 5 more" in shown[bulk.pk] and "lists only the first" in shown[bulk.pk]
    assert ("<code>{&quot;reason&quot;: &quot;load&quot;, &quot;target&quot;: 3}</code>"
            in shown[single.pk])


def test_filters(viewer: Client) -> None:
    a = event("pause", actor="alice", job_id="photo-17")
    b = event("resume", actor="bob", job_id="photo-2")
    c = event("scale", actor="bob", target_type="queue", queue="batch-processing",
              target_id="batch-processing")
    d = event("cancel_job", actor="carol", target_type="job", target_id="thumb-1",
              job_id="thumb-1")
    AuditEvent.objects.filter(pk=a.pk).update(created_at=datetime(2026, 1, 10, 23, 59, tzinfo=UTC))
    AuditEvent.objects.filter(pk=b.pk).update(created_at=datetime(2026, 1, 11, 0, 0, tzinfo=UTC))
    AuditEvent.objects.filter(pk=c.pk).update(created_at=datetime(2026, 1, 12, 12, 0, tzinfo=UTC))
    cases = [
        ({"actor": "bob"}, [c, b]),
        ({"action": "cancel_job"}, [d]),
        ({"target_type": "job"}, [d]),
        ({"queue": "batch-processing"}, [c]),
        ({"job_id": "photo-1"}, [a]),
        ({"job_id": "photo"}, [b, a]),
        ({"from": "2026-01-11"}, [d, c, b]),
        ({"to": "2026-01-11"}, [b, a]),
        ({"from": "2026-01-11", "to": "2026-01-11"}, [b]),
        ({"actor": "bob", "from": "2026-01-12", "to": "2026-01-12"}, [c]),
        ({"actor": "nobody"}, []),
    ]
    for query, expected in cases:
        reply = viewer.get(PAGE, query)
        assert reply.status_code == 200
        assert ids(reply.content.decode()) == [e.pk for e in expected], query
    page = viewer.get(PAGE).content.decode()
    for action in ("cancel_job", "pause", "resume", "scale"):
        assert f'<option value="{action}">{action}</option>' in page, "actions present"
    assert '<option value="purge">' not in page


@pytest.mark.parametrize(("query", "says"), [
    ({"action": "no-such-action"}, "action: Select a valid choice."),
    ({"target_type": "planet"}, "target_type: Select a valid choice."),
    ({"from": "yesterday"}, "from: Enter a valid date."),
    ({"to": "2026-02-30"}, "to: Enter a valid date."),
    ({"from": "2026-03-02", "to": "2026-03-01"}, "The range starts after it ends."),
    ({"before": "12;drop table"}, "before: Not a position in the audit trail"),
    ({"before": "99999999999999999.1"}, "before: Not a position in the audit trail"),
    ({"actor": "x" * 151}, "actor: Ensure this value has at most 150 characters"),
])
def test_a_bad_filter_is_a_400_with_a_sentence(viewer: Client, query: dict[str, str],
                                               says: str) -> None:
    event("pause")
    reply = viewer.get(PAGE, query)
    assert reply.status_code == 400 and reply["Content-Type"].startswith("text/plain")
    assert says in reply.content.decode()


def test_keyset_paging_walks_every_event_once_without_offset(viewer: Client) -> None:
    made = [event("pause", target_id=f"q{n}") for n in range(120)]
    same = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    # Ties on created_at are broken by id: forty events share one instant.
    AuditEvent.objects.filter(pk__in=[e.pk for e in made[30:70]]).update(created_at=same)
    AuditEvent.objects.filter(pk__in=[e.pk for e in made[:30]]).update(
        created_at=same - timedelta(hours=1))
    AuditEvent.objects.filter(pk__in=[e.pk for e in made[70:]]).update(
        created_at=same + timedelta(hours=1))
    seen: list[int] = []
    url = PAGE
    sizes = []
    with CaptureQueriesContext(connection) as queries:
        while url:
            page = viewer.get(url).content.decode()
            sizes.append(len(ids(page)))
            seen += ids(page)
            older = re.search(r'<a href="(\?[^"]+)" rel="next"', page)
            url = PAGE + html.unescape(older.group(1)) if older else ""
            if len(sizes) == 2:  # a new event while paging shifts nothing
                event("resume")
    assert sizes == [50, 50, 20]
    assert seen == sorted(seen, reverse=True) and sorted(seen) == [e.pk for e in made]
    assert not any("OFFSET" in q["sql"].upper() for q in queries.captured_queries)
    assert "&laquo; newest" in page


def test_paging_keeps_the_filters(viewer: Client) -> None:
    for n in range(120):
        event("pause", actor="alice" if n % 2 else "bob")
    first = viewer.get(PAGE, {"actor": "alice"}).content.decode()
    older = re.search(r'<a href="\?([^"]+)" rel="next"', first)
    assert older and "actor=alice" in html.unescape(older.group(1))
    rest = viewer.get(f"{PAGE}?{html.unescape(older.group(1))}").content.decode()
    assert len(ids(first)) == 50 and len(ids(rest)) == 10
    assert {AuditEvent.objects.get(pk=pk).actor for pk in ids(first) + ids(rest)} == {"alice"}


def test_viewing_needs_the_dashboard_permission() -> None:
    assert staff_client("deadletter", "view_auditevent").get(PAGE).status_code == 403


def test_user_text_is_escaped(viewer: Client, r: redis.Redis) -> None:
    letter = dead("xss", f"bad {XSS}", payload='{"caption": "<script>alert(1)</script>"}')
    services.archive_dead_letter(letter.pk, actor=XSS, reason=XSS)
    event("purge", **services.job_id_details([XSS], 1))
    page = viewer.get(PAGE).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x onerror=alert(1)&gt;" \
        in page
    assert len(rows(page)) == 2
