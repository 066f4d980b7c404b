"""The dashboard's overview through Django's test client: figures, fragments, series,
permissions and escaping (the browser suite, tests/browser, drives it in Chromium)."""

from __future__ import annotations

import html
import re

import pytest
import redis
from django.test import Client

from queues import store
from queues.jobs import enqueue_many
from queues.models import QueueType
from queues.ops import manager, stats
from queues.store import keys
from tests.conftest import staff_client
from tests.integration.test_deadletter_services import record

pytestmark = pytest.mark.django_db
Q = "photo-processing"
OVERVIEW = "/admin/dashboard/"


def staff(*perms: str) -> Client:
    return staff_client("queues", *perms)


@pytest.fixture
def viewer() -> Client:
    return staff("view_dashboard")


def _row(page: str, queue: str) -> list[str]:
    """The cells of ``queue``'s row on the overview, as text."""
    match = re.search(rf'<tr data-queue="{re.escape(queue)}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {queue}"
    return [html.unescape(re.sub(r"<[^>]+>", " ", cell)).split()[0] if cell.strip() else ""
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", match.group(1), re.S)]


def test_the_overview_shows_each_queue_with_the_counts_of_queue_status(
        viewer: Client, r: redis.Redis) -> None:
    enqueue_many(Q, "t-echo", [{"value": n} for n in range(3)])
    enqueue_many(Q, "t-echo", [{"value": 9}], delay_ms=60_000)
    manager.pause_queue(Q)
    reply = viewer.get(OVERVIEW)
    assert reply.status_code == 200
    page = reply.content.decode()
    cells = _row(page, Q)
    counts = manager.queue_status(Q).job_counts
    assert cells[1:1 + len(keys.STATES)] == [str(counts[state]) for state in keys.STATES]
    assert (counts["waiting"], counts["delayed"]) == (3, 1)
    assert cells[1 + len(keys.STATES)] == "paused"
    for name in manager.list_queues():
        assert f'data-queue="{name}"' in page
    assert 'hx-trigger="every 3s [document.visibilityState === \'visible\']"' in html.unescape(
        page)
    assert "/static/queues/vendor/chart-4.6.1.umd.min.js" in page
    assert re.search(r'<script src="/static/django_htmx/htmx-2[^"]*\.js"', page)


def test_the_rows_fragment_is_the_table_alone_and_follows_the_store(
        viewer: Client, r: redis.Redis) -> None:
    before = _row(viewer.get("/admin/dashboard/overview/rows").content.decode(), Q)
    enqueue_many(Q, "t-echo", [{"value": n} for n in range(5)])
    reply = viewer.get("/admin/dashboard/overview/rows", HTTP_HX_REQUEST="true")
    fragment = reply.content.decode()
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="jq-overview"')
    waiting = keys.STATES.index("waiting") + 1
    assert int(_row(fragment, Q)[waiting]) == int(before[waiting]) + 5


def test_the_series_counts_finished_jobs_per_minute_and_per_hour(
        viewer: Client, r: redis.Redis) -> None:
    now = store.now_ms()
    minute = now // 60_000
    r.hset(keys.stats_minute(Q, minute), mapping={"completed": 4, "failed": 1})
    r.hset(keys.stats_minute(Q, minute - 2), mapping={"completed": 2})
    body = viewer.get("/admin/dashboard/overview/series").json()
    mine = body["queues"][Q]["minute"]
    assert len(mine["starts_ms"]) == 60 and mine["starts_ms"][-1] == minute * 60_000
    assert (mine["completed"][-1], mine["failed"][-1], mine["completed"][-3]) == (4, 1, 2)
    hourly = body["queues"][Q]["hour"]
    assert len(hourly["starts_ms"]) == 24
    assert sum(hourly["completed"]) == 6 and sum(hourly["failed"]) == 1
    assert body["all"]["minute"]["completed"][-1] >= 4


def test_hours_come_from_the_roll_up_and_later_minutes_from_their_buckets(
        r: redis.Redis) -> None:
    hour = store.now_ms() // 3_600_000
    now = hour * 3_600_000 + 30 * 60_000  # half past
    r.hset(keys.stats_hour(Q, hour - 1), mapping={"completed": 7})  # rolled up
    r.set(keys.stats_rolled(Q), hour * 60 - 1)
    r.hset(keys.stats_minute(Q, hour * 60 - 5), mapping={"completed": 100})  # already rolled
    r.hset(keys.stats_minute(Q, hour * 60 + 10), mapping={"completed": 3, "failed": 2})
    series = stats.per_hour(Q, 24, now_ms=now)
    assert (series.completed[-2], series.completed[-1], series.failed[-1]) == (7, 3, 2)


def test_a_staff_user_without_the_permission_gets_403_and_anonymous_the_login(
        r: redis.Redis) -> None:
    nobody = staff()
    for url in (OVERVIEW, "/admin/dashboard/overview/rows", "/admin/dashboard/overview/series"):
        assert nobody.get(url).status_code == 403
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_the_admin_index_links_the_dashboard_for_viewers_only(
        viewer: Client, r: redis.Redis) -> None:
    assert 'href="/admin/dashboard/"' in viewer.get("/admin/").content.decode()
    assert 'href="/admin/dashboard/"' not in staff().get("/admin/").content.decode()


def test_a_display_name_with_markup_is_text(viewer: Client, r: redis.Redis) -> None:
    QueueType.objects.filter(name=Q).update(display_name='"><img src=x onerror=alert(1)>')
    page = viewer.get(OVERVIEW).content.decode()
    assert "<img src=x" not in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_overview_says_unknown_when_redis_is_down(viewer: Client, r: redis.Redis) -> None:
    from django.test import override_settings

    with override_settings(COORDINATOR_REDIS_URL="redis://127.0.0.1:1/0"):
        page = viewer.get(OVERVIEW).content.decode()
    assert _row(page, Q)[-1] == "unknown"
    assert "Cannot read the queue" in page


def _jobs_on(page: str) -> list[str]:
    return re.findall(r'<tr data-job="([^"]+)">', page)


def test_the_waiting_tab_lists_jobs_in_the_order_workers_take_them(
        viewer: Client, r: redis.Redis) -> None:
    low = enqueue_many(Q, "t-echo", [{"value": n} for n in range(3)], priority=5)
    urgent = enqueue_many(Q, "t-echo", [{"value": n} for n in range(2)], priority=0)
    page = viewer.get(f"/admin/dashboard/queues/{Q}/", {"state": "waiting"}).content.decode()
    assert _jobs_on(page) == [h.id for h in urgent] + [h.id for h in low]
    assert "priority 0 first, oldest first" in page
    assert 'data-tab="waiting"' in page and "jq-tab-on" in page


def test_a_priority_change_lists_the_job_once_at_its_new_place(
        viewer: Client, r: redis.Redis) -> None:
    from queues.jobs import change_priority

    first, second = enqueue_many(Q, "t-echo", [{"value": n} for n in range(2)], priority=3)
    change_priority(Q, second.id, 0)
    page = viewer.get(f"/admin/dashboard/queues/{Q}/").content.decode()
    assert _jobs_on(page) == [second.id, first.id]


def test_other_tabs_page_through_their_index_by_rank(viewer: Client, r: redis.Redis) -> None:
    soon = enqueue_many(Q, "t-echo", [{"value": 1}], delay_ms=5_000)
    later = enqueue_many(Q, "t-echo", [{"value": n} for n in range(60)], delay_ms=60_000)
    first = viewer.get(f"/admin/dashboard/queues/{Q}/", {"state": "delayed"}).content.decode()
    shown = _jobs_on(first)
    assert len(shown) == 50 and shown[0] == soon[0].id
    assert "page 1 of 2" in first and 'rel="next"' in first
    second = viewer.get(f"/admin/dashboard/queues/{Q}/",
                        {"state": "delayed", "page": "2"}).content.decode()
    assert set(_jobs_on(second)) | set(shown) == {h.id for h in soon + later}
    assert len(_jobs_on(second)) == 11 and 'rel="prev"' in second


def test_finished_tabs_show_the_newest_first_with_the_error(
        viewer: Client, r: redis.Redis) -> None:
    for n, job_id in enumerate(("old", "new")):
        r.hset(keys.job(Q, job_id), mapping={"id": job_id, "name": "t-echo", "state": "failed",
                                             "error_type": "ValueError",
                                             "error": "<b>bad</b>", "finished_at": 1000 + n})
        r.zadd(keys.state_index(Q, "failed"), {job_id: 1000 + n})
    page = viewer.get(f"/admin/dashboard/queues/{Q}/", {"state": "failed"}).content.decode()
    assert _jobs_on(page) == ["new", "old"]
    assert "ValueError: &lt;b&gt;bad&lt;/b&gt;" in page and "<b>bad</b>" not in page


def test_a_bad_state_or_page_is_a_400_and_an_unknown_queue_a_404(
        viewer: Client, r: redis.Redis) -> None:
    url = f"/admin/dashboard/queues/{Q}/"
    assert viewer.get(url, {"state": "nope"}).status_code == 400
    assert viewer.get(url, {"page": "0"}).status_code == 400
    assert viewer.get(url, {"page": "x"}).status_code == 400
    assert viewer.get("/admin/dashboard/queues/no-such-queue/").status_code == 404
    assert staff().get(url).status_code == 403


def test_the_active_tab_names_the_worker_that_claimed_each_job(
        viewer: Client, r: redis.Redis) -> None:
    [job] = enqueue_many(Q, "t-echo", [{"value": 1}])
    assert store.claim(Q, job.id, gen=1, token="tok", worker="w1@host").claimed
    page = viewer.get(f"/admin/dashboard/queues/{Q}/", {"state": "active"}).content.decode()
    assert _jobs_on(page) == [job.id]
    assert "<td>w1@host</td>" in page


def test_the_job_page_shows_payload_log_and_result_as_text(
        viewer: Client, r: redis.Redis) -> None:
    from queues.jobs import JobContext

    [job] = enqueue_many(Q, "t-echo", [{"value": 1, "note": "<script>alert(1)</script>"}])
    assert store.claim(Q, job.id, gen=1, token="tok", worker="w1@host").claimed
    ctx = JobContext(job.id, Q, "t-echo")
    ctx.log('"><img src=x onerror=alert(1)>')
    ctx.progress(40)
    page = viewer.get(f"/admin/dashboard/queues/{Q}/jobs/{job.id}/").content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&quot;note&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'value="40"' in page and "worker w1@host" in page
    assert "&quot;value&quot;: 1" in page  # pretty-printed
    assert store.complete(Q, job.id, token="tok", worker="w1@host", result='{"size": 3}')
    done = viewer.get(f"/admin/dashboard/queues/{Q}/jobs/{job.id}/").content.decode()
    assert 'id="jq-job-result"' in done and "&quot;size&quot;: 3" in done


def test_a_failed_job_shows_its_error_traceback_and_dead_letter_link(
        viewer: Client, r: redis.Redis) -> None:
    r.hset(keys.job(Q, "f1"), mapping={
        "id": "f1", "queue": Q, "name": "t-echo", "state": "failed", "data": "{}",
        "max_attempts": 3, "attempts_made": 3, "error_type": "ValueError",
        "error": "bad <input>", "traceback": "Traceback ...\nValueError: bad <input>",
        "failed_reason": "max_attempts_exceeded", "finished_at": 5})
    row = record("f1")
    page = viewer.get(f"/admin/dashboard/queues/{Q}/jobs/f1/").content.decode()
    assert "ValueError</strong>: bad &lt;input&gt;" in page
    assert "ValueError: bad &lt;input&gt;</pre>" in page
    link = f'href="/admin/deadletter/deadletter/{row.pk}/change/">Dead letter #{row.pk} (open)'
    assert link in page


def test_an_unknown_job_is_a_404(viewer: Client, r: redis.Redis) -> None:
    assert viewer.get(f"/admin/dashboard/queues/{Q}/jobs/nope/").status_code == 404
    assert viewer.get("/admin/dashboard/queues/no-such/jobs/nope/").status_code == 404
    assert staff().get(f"/admin/dashboard/queues/{Q}/jobs/nope/").status_code == 403


def test_search_finds_by_id_prefix_payload_text_and_type_and_says_how_far_it_looked(
        viewer: Client, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    from queues.ops import browse

    enqueue_many(Q, "t-echo", [{"value": n, "note": "plain"} for n in range(30)])
    enqueue_many(Q, "t-echo", [{"value": 99, "note": "needle <here>"}])
    enqueue_many(Q, "t-sleep", [{"ms": 1, "tag": "needle"}], job_id="abc-sleep")
    url = f"/admin/dashboard/queues/{Q}/"
    found = viewer.get(url, {"q": "needle"}).content.decode()
    assert len(_jobs_on(found)) == 2 and "2 matches among the first 32 of 32 waiting" in found
    typed = viewer.get(url, {"q": "needle", "type": "t-sleep"}).content.decode()
    assert _jobs_on(typed) == ["abc-sleep"]
    by_prefix = viewer.get(url, {"q": "abc-"}).content.decode()
    assert _jobs_on(by_prefix) == ["abc-sleep"]
    exact = viewer.get(url, {"q": "abc-sleep", "state": "delayed"}).content.decode()
    assert "Job <a href" in exact and "abc-sleep</code></a> is waiting" in exact
    nothing = viewer.get(url, {"q": "no such text"}).content.decode()
    assert _jobs_on(nothing) == [] and "No waiting job matches." in nothing
    monkeypatch.setattr(browse, "SEARCH_BUDGET", 10)
    bounded = viewer.get(url, {"q": "needle"}).content.decode()
    assert "among the first 10 of 32 waiting jobs (a search reads at most" in bounded


def test_the_workers_page_lists_each_worker_from_its_heartbeat(
        viewer: Client, r: redis.Redis) -> None:
    from workers import presence

    presence.heartbeat(presence.Heartbeat(
        hostname="w1@host-a", pid=4242, queues=(Q,), concurrency=3, started_at=1,
        active_jobs=2, rss_bytes=50 * 1024 * 1024, cpu_percent=12.5, pool="threads"))
    page = viewer.get("/admin/dashboard/workers/").content.decode()
    row = re.search(r'<tr data-worker="w1@host-a">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
             for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row.group(1), re.S)]
    assert cells[:8] == ["w1@host-a", "4242", Q, "threads", "3", "2", "50.0\xa0MB", "12.5 %"]
    assert cells[-1] == "active"
    assert 'href="/admin/dashboard/workers/"' in viewer.get(OVERVIEW).content.decode()
    assert staff().get("/admin/dashboard/workers/").status_code == 403


def test_with_redis_unreachable_each_page_says_so_with_a_503_and_actions_change_nothing(
        r: redis.Redis) -> None:
    from django.test import override_settings

    from deadletter.models import AuditEvent
    from tests.redis_plugin import free_port

    handle = enqueue_many(Q, "t-echo", [{"value": 1}], delay_ms=60_000)[0]
    operator = staff("view_dashboard", "manage_jobs")
    # The job store points at a port nothing listens on.
    with override_settings(COORDINATOR_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        overview = operator.get(OVERVIEW)
        assert overview.status_code == 200
        assert 'class="jq-status jq-status-unknown"' in overview.content.decode()
        for page in (f"/admin/dashboard/queues/{Q}/?state=delayed",
                     f"/admin/dashboard/queues/{Q}/jobs/{handle.id}/",
                     "/admin/dashboard/workers/"):
            reply = operator.get(page)
            assert reply.status_code == 503, page
            assert 'id="jq-unavailable"' in reply.content.decode()
        reply = operator.post(f"/admin/dashboard/queues/{Q}/act",
                              {"action": "promote", "ids": handle.id})
        assert reply.status_code == 503
    assert store.fields(Q, handle.id, "state") == ["delayed"]
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("text", ["x" * 10_000, "\x00", "'; DROP TABLE x; --", "*?[]{}",
                                  "\ud800".encode("utf-8", "surrogatepass").decode("latin-1")])
def test_hostile_search_text_is_searched_for_as_text(viewer: Client, r: redis.Redis,
                                                     text: str) -> None:
    enqueue_many(Q, "t-echo", [{"value": 1}])
    reply = viewer.get(f"/admin/dashboard/queues/{Q}/", {"state": "waiting", "q": text})
    assert reply.status_code == 200
    assert 'id="jq-search-scope">0 matches among the first 1 of 1 waiting jobs' in \
        reply.content.decode()


@pytest.mark.parametrize("job_id", ["%00", "..%2F..%2Fetc", "a" * 5000, "%3Cscript%3E",
                                    "%F0%9F%92%A5"])
def test_hostile_job_ids_in_the_address_are_404s(viewer: Client, r: redis.Redis,
                                                 job_id: str) -> None:
    reply = viewer.get(f"/admin/dashboard/queues/{Q}/jobs/{job_id}/")
    assert reply.status_code == 404
    assert "<script>" not in reply.content.decode()


def test_a_queue_type_change_page_links_its_dashboard_page_for_who_may_view_it(
        r: redis.Redis) -> None:
    row = QueueType.objects.get(name=Q)
    change = f"/admin/queues/queuetype/{row.pk}/change/"
    link = f'href="/admin/dashboard/queues/{Q}/" id="jq-queue-dashboard-link"'
    assert link in staff("view_queuetype", "view_dashboard").get(change).content.decode()
    assert link not in staff("view_queuetype").get(change).content.decode()


@pytest.mark.parametrize("page", [
    f"/admin/dashboard/queues/{Q}/?state=<script>alert(1)</script>",
    f"/admin/dashboard/queues/{Q}/?state=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    "/admin/dashboard/recurring/?queue=<script>alert(1)</script>"])
def test_a_refused_filter_quoting_markup_is_answered_as_plain_text(
        viewer: Client, r: redis.Redis, page: str) -> None:
    reply = viewer.get(page)
    assert reply.status_code in (400, 404)
    if reply.status_code == 400:
        assert reply["Content-Type"] == "text/plain; charset=utf-8"
    else:
        assert "<script>alert" not in reply.content.decode()
