"""The dashboard's Failures page and its group actions through Django's test client:
grouping by error fingerprint, filters, sparklines, requeue/archive of a group,
permissions, CSRF and escaping; ``services.act_on_group`` and the fingerprint
migration against real SQL and Redis."""

from __future__ import annotations

import html
import importlib
import re
from types import SimpleNamespace

import pytest
import redis
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from deadletter import dashboard, recording, services
from deadletter.fingerprint import fingerprint
from deadletter.models import AuditEvent, DeadLetter
from queues import store
from tests.conftest import staff_client, staff_user
from tests.integration.test_deadletter_services import Q, failure

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db]
PAGE = "/admin/dashboard/failures/"
SEED = "ValueError: photo <n> not found in <str>"
XSS = "<script>alert(1)</script> \"><img src=x onerror=alert(1)>"
HOUR_MS = 3_600_000


def dead(job_id: str, message: str, *, queue: str = Q, error: str = "ValueError",
         name: str = "t-always-fails", hours_ago: float = 0,
         payload: str = '{"item": "x"}') -> DeadLetter:
    """A dead letter written by the recording path, as a worker's failure writes it."""
    rec = failure(job_id, name=name, error=error, payload=payload,
                  finished_at=store.now_ms() - int(hours_ago * HOUR_MS))
    rec.update(queue=queue, task=f"{queue}:{name}", error=message)
    recording.record_failure(queue=queue, job_id=job_id, record=rec)
    return DeadLetter.objects.get(queue=queue, job_id=job_id)


def viewer(*extra: str) -> Client:
    return staff_client("queues", "view_dashboard", *extra)


@pytest.fixture
def operator() -> Client:
    return viewer("deadletter.requeue_deadletter", "deadletter.archive_deadletter")


def groups(page: str) -> dict[str, str]:
    """Each group row's HTML by its ``queue/fingerprint``."""
    return dict(re.findall(r'<tr data-group="([^"]+)">(.*?)</tr>', page, re.S))


def action_url(row: DeadLetter, action: str) -> str:
    return f"{PAGE}{row.queue}/{row.fingerprint}/{action}"


def test_failures_are_grouped_by_queue_and_fingerprint(operator: Client, r: redis.Redis) -> None:
    a = dead("a", "photo 1234 not found in 'bucket-7'", hours_ago=5, name="t-boom")
    b = dead("b", "photo 99 not found in 'x'", hours_ago=1)
    other = dead("c", "disk full", error="OSError", hours_ago=3)
    elsewhere = dead("d", "photo 5 not found in 'y'", queue="batch-processing", hours_ago=2)
    assert a.fingerprint == b.fingerprint == elsewhere.fingerprint != other.fingerprint
    assert a.fingerprint_text == SEED
    reply = operator.get(PAGE)
    assert reply.status_code == 200
    page = reply.content.decode()
    rows = groups(page)
    assert list(rows) == [f"{Q}/{a.fingerprint}", f"batch-processing/{a.fingerprint}",
                          f"{Q}/{other.fingerprint}"], "the group that failed last first"
    seed = rows[f"{Q}/{a.fingerprint}"]
    assert html.escape(SEED) in seed and "t-always-fails, t-boom" in seed
    assert '<td class="jq-num jq-failure-count">2</td>' in seed
    assert f'href="/admin/deadletter/deadletter/{b.pk}/change/"' in seed
    assert a.failed_at.strftime("%Y-%m-%d %H:%M:%S") in seed
    assert b.failed_at.strftime("%Y-%m-%d %H:%M:%S") in seed
    assert 'data-jq-confirm="Requeue all 2 open dead letters in this group as new jobs?"' in seed
    assert f'action="{action_url(a, "requeue")}"' in seed
    assert f'action="{action_url(a, "archive")}"' in seed
    assert 'name="csrfmiddlewaretoken"' in seed
    assert "/static/queues/actions.js" in page and 'id="jq-nav-failures"' in page


def test_status_and_queue_filters(operator: Client, r: redis.Redis) -> None:
    kept = dead("open-1", "photo 1 not found in 'x'")
    gone = dead("archived-1", "photo 2 not found in 'x'", queue="batch-processing")
    services.archive_dead_letter(gone.pk, actor="t")
    assert list(groups(operator.get(PAGE).content.decode())) == [f"{Q}/{kept.fingerprint}"]
    archived = operator.get(PAGE, {"status": "archived"}).content.decode()
    assert list(groups(archived)) == [f"batch-processing/{gone.fingerprint}"]
    assert "Requeue all" not in archived, "group actions act on open rows only"
    assert not groups(operator.get(PAGE, {"queue": "batch-processing"}).content.decode())
    assert "No open dead letters in maintenance." in operator.get(
        PAGE, {"queue": "maintenance"}).content.decode()


@pytest.mark.parametrize("query", [{"status": "lost"}, {"queue": "no-such-queue"},
                                   {"status": "<script>alert(1)</script>"}])
def test_a_bad_filter_is_a_400_with_a_sentence(operator: Client, query: dict[str, str]) -> None:
    reply = operator.get(PAGE, query)
    assert reply.status_code == 400
    assert reply["Content-Type"].startswith("text/plain")
    body = reply.content.decode()
    assert body.startswith("The filter was refused (") and "valid choice" in body


def test_each_group_has_a_sparkline_of_the_last_24_hours(operator: Client,
                                                         r: redis.Redis) -> None:
    for n, hours_ago in enumerate((0, 0, 0, 2, 23, 30)):
        row = dead(f"s{n}", "photo 1 not found in 'x'", hours_ago=hours_ago)
    seed = groups(operator.get(PAGE).content.decode())[f"{Q}/{row.fingerprint}"]
    label = re.search(r'<svg class="jq-spark"[^>]*aria-label="([^"]+)"', seed)
    assert label, seed
    counts = [int(n) for n in label.group(1).split(": ", 1)[1].split(" (")[0].split(", ")]
    assert len(counts) == 24 and counts[-1] == 3 and counts[-3] == 1 and counts[0] == 1
    assert sum(counts) == 5, "the failure 30 hours ago is outside the window"
    assert "(total 5, peak 3)" in label.group(1)
    assert seed.count("<rect ") == 24 and seed.count('class="jq-spark-on"') == 3


def test_the_page_costs_the_same_queries_for_two_groups_or_twenty(operator: Client,
                                                                  r: redis.Redis) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            assert operator.get(PAGE).status_code == 200
        return len(seen.captured_queries)

    for n in range(2):
        dead(f"few-{n}", f"error kind {'abcdefghij'[n]}")
    queries()  # the first request also loads the queue registry's snapshot
    few = queries()
    for n in range(2, 20):
        dead(f"many-{n}", f"error kind {'abcdefghijklmnopqrstuvwxyz'[n]}", name=f"t-{n}")
    assert queries() == few


def test_the_number_of_groups_is_capped_and_the_page_says_so(
        operator: Client, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "MAX_GROUPS", 3)
    for n in range(5):
        dead(f"cap-{n}", f"failure kind {'abcde'[n]}", hours_ago=n)
    page = operator.get(PAGE).content.decode()
    assert len(groups(page)) == 3
    assert "Only the 3 groups that failed most recently are shown" in page
    assert "failure kind a" in page and "failure kind e" not in page


def test_requeue_all_in_a_group_requeues_its_open_rows_and_audits_each(
        operator: Client, r: redis.Redis) -> None:
    rows = [dead(f"rq-{n}", f"photo {n} not found in 'b{n}'") for n in range(3)]
    other = dead("rq-other", "disk full", error="OSError")
    reply = operator.post(action_url(rows[0], "requeue"))
    assert reply.status_code == 303 and reply["Location"] == PAGE
    page = operator.get(PAGE).content.decode()
    assert "Requeued 3 dead letters." in page
    assert set(DeadLetter.objects.filter(pk__in=[x.pk for x in rows]).values_list(
        "status", flat=True)) == {"requeued"}
    assert DeadLetter.objects.get(pk=other.pk).status == "open"
    events = AuditEvent.objects.filter(action="requeue", target_type="dead_letter")
    assert sorted(events.values_list("job_id", flat=True)) == ["rq-0", "rq-1", "rq-2"]
    assert {e.actor for e in events} == {DeadLetter.objects.get(pk=rows[0].pk).acted_by}
    assert store.client().llen(f"{Q}\x06\x162") == 3, "three new jobs were published"


def test_archive_all_keeps_the_queue_filter(operator: Client, r: redis.Redis) -> None:
    rows = [dead(f"ar-{n}", "photo 1 not found in 'x'") for n in range(2)]
    reply = operator.post(action_url(rows[0], "archive"), {"queue_filter": Q}, follow=True)
    assert reply.redirect_chain == [(f"{PAGE}?queue={Q}", 303)]
    assert "Archived 2 dead letters." in reply.content.decode()
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"archived"}
    assert AuditEvent.objects.filter(action="archive").count() == 2


def test_a_group_whose_rows_are_refused_reports_the_errors(operator: Client,
                                                           r: redis.Redis) -> None:
    rows = [dead(f"gone-{n}", "photo 1 not found in 'x'", queue="retired") for n in range(2)]
    page = operator.get(PAGE).content.decode()
    assert f"retired/{rows[0].fingerprint}" in groups(page), "a queue type may be gone"
    reply = operator.post(action_url(rows[0], "requeue"), follow=True)
    text = html.unescape(reply.content.decode())
    assert "2 dead letters not requeued:" in text and f"{rows[0].pk}: " in text
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"open"}
    assert not AuditEvent.objects.exists()


def test_an_empty_group_says_so(operator: Client, r: redis.Redis) -> None:
    row = dead("once", "photo 1 not found in 'x'")
    services.archive_dead_letter(row.pk, actor="t")
    reply = operator.post(action_url(row, "requeue"), follow=True)
    assert "No open dead letters in this group." in reply.content.decode()


def test_without_the_permission_a_group_action_is_403_and_changes_nothing(
        r: redis.Redis) -> None:
    row = dead("perm", "photo 1 not found in 'x'")
    for action, button, other in (("requeue", "Requeue all", "archive"),
                                  ("archive", "Archive all", "requeue")):
        client = viewer(f"deadletter.{other}_deadletter")  # the other action's permission
        assert client.post(action_url(row, action)).status_code == 403
        page = client.get(PAGE).content.decode()
        assert button not in page and f"{other.capitalize()} all" in page
    assert staff_client("deadletter", "requeue_deadletter").post(
        action_url(row, "requeue")).status_code == 403, "the dashboard permission comes first"
    assert DeadLetter.objects.get(pk=row.pk).status == "open"
    assert not AuditEvent.objects.exists()
    assert store.client().llen(f"{Q}\x06\x162") == 0


def test_viewing_needs_the_dashboard_permission() -> None:
    assert staff_client("deadletter", "view_deadletter").get(PAGE).status_code == 403
    assert Client().get(PAGE).status_code == 302, "to admin's login"


def test_get_on_an_action_is_405(operator: Client, r: redis.Redis) -> None:
    row = dead("get", "photo 1 not found in 'x'")
    for action in ("requeue", "archive"):
        assert operator.get(action_url(row, action)).status_code == 405
    assert DeadLetter.objects.get(pk=row.pk).status == "open"


def test_a_bad_fingerprint_is_a_400(operator: Client) -> None:
    reply = operator.post(f"{PAGE}{Q}/not-a-fingerprint/requeue")
    assert reply.status_code == 400 and b"fingerprint" in reply.content


def test_an_action_without_the_csrf_token_is_refused(r: redis.Redis) -> None:
    row = dead("csrf", "photo 1 not found in 'x'")
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user("queues", "view_dashboard", "deadletter.requeue_deadletter"))
    assert client.post(action_url(row, "requeue")).status_code == 403
    assert DeadLetter.objects.get(pk=row.pk).status == "open"
    assert not AuditEvent.objects.exists()


def test_error_text_is_escaped(operator: Client, r: redis.Redis) -> None:
    row = dead("xss", f"bad photo {XSS}", error="ValueError",
               payload='{"caption": "<script>alert(1)</script>"}')
    page = operator.get(PAGE).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&lt;n&gt;)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(&lt;n&gt;)&gt;" in page
    assert f"{Q}/{row.fingerprint}" in groups(page)


def test_act_on_group_walks_the_open_rows_in_chunks_and_reports_progress(
        r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "GROUP_CHUNK", 2)
    rows = [dead(f"ch-{n}", "photo 1 not found in 'x'") for n in range(5)]
    services.archive_dead_letter(rows[1].pk, actor="t")  # not open: not walked
    seen: list[tuple[int, int]] = []
    result = services.act_on_group(Q, rows[0].fingerprint, "requeue", actor="ops",
                                   progress=lambda handled, total: seen.append((handled, total)))
    assert result == services.GroupResult(done=4, failed=0, errors=())
    assert seen == [(2, 4), (4, 4)]
    assert AuditEvent.objects.filter(action="requeue", actor="ops").count() == 4
    assert services.act_on_group(Q, rows[0].fingerprint, "requeue", actor="ops").done == 0
    with pytest.raises(ValueError, match="requeue or archive"):
        services.act_on_group(Q, rows[0].fingerprint, "purge", actor="ops")  # type: ignore[arg-type]


def test_a_requeued_job_that_fails_again_joins_the_same_group(r: redis.Redis) -> None:
    first = dead("lin", "photo 1 not found in 'x'")
    services.act_on_group(Q, first.fingerprint, "requeue", actor="ops")
    again = dead("lin:r1", "photo 2 not found in 'y'")
    assert again.previous == first and again.fingerprint == first.fingerprint
    assert again.fingerprint_text == SEED


def test_the_migration_fills_the_fingerprint_of_existing_rows(r: redis.Redis) -> None:
    rows = [dead("m1", "photo 1 not found in 'x'"), dead("m2", "disk 3 full", error="OSError")]
    DeadLetter.objects.update(fingerprint="", fingerprint_text="")
    migration = importlib.import_module("deadletter.migrations.0004_deadletter_fingerprint")
    migration.fill_fingerprints(apps, SimpleNamespace(connection=connection))
    for row in rows:
        stored = DeadLetter.objects.get(pk=row.pk)
        expected = fingerprint(row.error_type, row.error_message)
        assert (stored.fingerprint, stored.fingerprint_text) == (expected.key, expected.text)
