"""The dashboard in a real browser: Playwright for Python driving Debian's chromium,
against a live Django server, a real Redis and real ``celery worker`` processes.

``./dev test`` installs chromium (Debian package) when it is missing and it runs as
root; without any Chromium these tests are skipped with a sentence. Screenshots go
to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from playwright.sync_api import Page, expect

from queues.jobs import enqueue_many
from queues.ops.manager import queue_status
from queues.store import keys
from tests.browser.conftest import log_in, operator, shot
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
Q = "photo-processing"


def row_counts(page: Page) -> dict[str, int]:
    cells = page.locator(f'tr[data-queue="{Q}"] td[data-state]')
    return {keys.STATES[int(cell.get_attribute("data-state") or 0)]: int(cell.inner_text())
            for cell in cells.all()}


def test_the_overview_follows_real_workers_without_a_reload(
        page: Page, live_server: Any, builtin_queue_types: None, worker_process: Any,
        r: redis.Redis) -> None:
    log_in(page, live_server.url, operator("view_dashboard"), "/admin/dashboard/")
    expect(page.locator(f'tr[data-queue="{Q}"]')).to_be_visible()
    page.evaluate("window.__jqSamePage = true")  # gone if the page reloads
    enqueue_many(Q, "t-sleep", [{"ms": 30, "tag": n} for n in range(19)],
                 remove_on_complete=False)
    [reporter] = enqueue_many(Q, "t-report", [{}], remove_on_complete=False)
    worker_process((Q,), pool="prefork", concurrency=2)
    wait_for(lambda: queue_status(Q).job_counts["completed"] == 20, timeout=60)
    # the table catches up by itself, within a few refreshes
    wait_for(lambda: row_counts(page).get("completed") == 20, timeout=20, interval=0.2)
    status = queue_status(Q).job_counts
    assert row_counts(page) == {state: status[state] for state in keys.STATES}
    assert page.evaluate("window.__jqSamePage") is True
    workers = page.locator(f'tr[data-queue="{Q}"] td').nth(len(keys.STATES) + 1)
    wait_for(lambda: workers.inner_text() == "1", timeout=20, interval=0.2)
    # the charts read their series again within 10 s and draw the 20 jobs
    page.wait_for_function(
        "Number(document.querySelector('.jq-charts').dataset.completed) >= 20", timeout=25_000)
    shot(page, "overview")
    page.click(f'tr[data-queue="{Q}"] a')
    page.click('a[data-tab="completed"]')
    expect(page.locator("#jq-jobs tr[data-job]")).to_have_count(20)
    shot(page, "queue-completed")
    page.click(f'tr[data-job="{reporter.id}"] a')
    expect(page.locator("#jq-job-state")).to_have_text("completed")
    expect(page.locator("#jq-job-log tr")).to_have_count(3)
    expect(page.locator("#jq-job-log")).to_contain_text("step 100")
    expect(page.locator("#jq-job-progress")).to_have_attribute("value", "100")
    expect(page.locator("#jq-job-result")).to_have_text('"reported"')
    shot(page, "job")
    page.goto(f"{live_server.url}/admin/dashboard/")
    page.click("#jq-nav-workers")
    worker_rows = page.locator("#jq-workers tr[data-worker]")
    expect(worker_rows).to_have_count(1)
    expect(worker_rows.locator(".jq-worker-status")).to_have_text("active")
    shot(page, "workers")


def test_a_staff_user_without_the_permission_sees_403(
        page: Page, live_server: Any, builtin_queue_types: None) -> None:
    log_in(page, live_server.url, operator(), "/admin/")
    reply = page.goto(f"{live_server.url}/admin/dashboard/")
    assert reply is not None and reply.status == 403
    page.goto(f"{live_server.url}/admin/")
    expect(page.locator("#jq-dashboard-link")).to_have_count(0)
    shot(page, "forbidden-index")


HIDE = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  document.dispatchEvent(new Event("visibilitychange"));
  window.__jqHiddenAt = Date.now();
  window.__jqRefreshesWhenHidden = window.__jqRefreshes;
}"""
SHOW = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "visible"});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_the_overview_stops_refreshing_while_its_tab_is_hidden(
        page: Page, live_server: Any, builtin_queue_types: None) -> None:
    log_in(page, live_server.url, operator("view_dashboard"), "/admin/dashboard/")
    page.evaluate("""() => {
      window.__jqRefreshes = 0;
      document.body.addEventListener("htmx:beforeRequest", () => { window.__jqRefreshes += 1; });
    }""")
    page.wait_for_function("window.__jqRefreshes >= 2", timeout=15_000)
    page.evaluate(HIDE)
    # Absence can only be seen over time: three refresh periods (3 s each) go by hidden.
    page.wait_for_function("Date.now() - window.__jqHiddenAt > 9000", timeout=15_000,
                           polling=500)
    assert page.evaluate("window.__jqRefreshes - window.__jqRefreshesWhenHidden") == 0
    page.evaluate(SHOW)
    page.wait_for_function("window.__jqRefreshes > window.__jqRefreshesWhenHidden",
                           timeout=15_000)
