"""The dashboard's actions in a real browser, as an operator takes them: bulk-retry the
failed jobs matching a filter once their upstream is back and see them complete;
pause a queue and see nothing start; resume it and see its jobs run.

Real ``celery worker`` processes (the queue's and the maintenance queue's), a live
Django server, Debian's chromium through Playwright (fixtures: ``conftest.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from playwright.sync_api import Page, expect

from deadletter.models import DeadLetter
from queues.jobs import enqueue, enqueue_many, get_job
from queues.ops.manager import queue_status
from tests import fixtures_tasks as t
from tests.browser.conftest import log_in, operator, shot
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
Q = "photo-processing"


def accept_next_dialog(page: Page) -> None:
    page.once("dialog", lambda dialog: dialog.accept())


def test_bulk_retry_of_the_failed_jobs_matching_a_filter_completes_them(
        page: Page, live_server: Any, builtin_queue_types: None, worker_process: Any,
        r: redis.Redis) -> None:
    r.set(t.OUTAGE_KEY, 1)
    enqueue_many(Q, "t-needs-upstream", [{"item": n} for n in range(12)],
                 remove_on_complete=False)
    enqueue_many(Q, "t-always-fails", [{"item": "other"}] * 3)
    worker_process((Q, "maintenance"), pool="prefork", concurrency=2)
    wait_for(lambda: DeadLetter.objects.filter(status="open").count() == 15, timeout=60)
    r.delete(t.OUTAGE_KEY)  # the upstream is back

    username = operator("view_dashboard", "manage_jobs", "deadletter.requeue_deadletter")
    log_in(page, live_server.url, username, f"/admin/dashboard/queues/{Q}/?state=failed")
    expect(page.locator("#jq-jobs tr[data-job]")).to_have_count(15)
    page.fill("#jq-search input[name=type]", "t-needs-upstream")
    page.click("#jq-search button[type=submit]")
    expect(page.locator("#jq-jobs tr[data-job]")).to_have_count(12)
    shot(page, "queue-failed-filtered")
    accept_next_dialog(page)
    page.click('#jq-actions form[data-action="retry"] button.jq-all')
    # the action runs as a maintenance job; its page follows it until it is done
    expect(page.locator(".messagelist")).to_contain_text("as maintenance job")
    expect(page.locator("#jq-job-state")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#jq-job-progress")).to_have_attribute("value", "100")
    expect(page.locator("#jq-job-log")).to_contain_text("12 jobs retried.")
    shot(page, "bulk-action")

    wait_for(lambda: queue_status(Q).job_counts["completed"] == 12, timeout=60)
    assert DeadLetter.objects.filter(status="requeued", job_name="t-needs-upstream").count() == 12
    assert DeadLetter.objects.filter(status="open", job_name="t-always-fails").count() == 3
    page.goto(f"{live_server.url}/admin/dashboard/queues/{Q}/?state=completed")
    expect(page.locator("#jq-jobs tr[data-job]")).to_have_count(12)


def test_a_paused_queue_starts_nothing_until_it_is_resumed(
        page: Page, live_server: Any, builtin_queue_types: None, worker_process: Any,
        r: redis.Redis) -> None:
    worker_process((Q, "maintenance"), pool="prefork", concurrency=2)
    log_in(page, live_server.url, operator("view_dashboard", "manage_jobs"),
           f"/admin/dashboard/queues/{Q}/")
    accept_next_dialog(page)
    page.click("#jq-queue-pause button")
    expect(page.locator(".messagelist")).to_contain_text(f"Paused {Q}")
    expect(page.locator("#jq-queue-resume")).to_be_visible()
    enqueue_many(Q, "t-cooperative", [{"ms": 10}] * 4, remove_on_complete=False)
    # The same worker runs a job of its other queue, enqueued after these four: it is
    # consuming, and had the paused queue's jobs been taken they would have started.
    check = enqueue("maintenance", "consistency-check", {"queue": Q})
    wait_for(lambda: get_job("maintenance", check.id).state == "completed", timeout=30)
    assert r.lrange("test:started", 0, -1) == [], "no job of the paused queue started"
    assert queue_status(Q).job_counts["active"] == 0
    page.reload()
    expect(page.locator("#jq-jobs tr[data-job]")).to_have_count(4)
    expect(page.locator(".jq-figures .jq-paused")).to_have_text("paused")
    shot(page, "queue-paused")
    accept_next_dialog(page)
    page.click("#jq-queue-resume button")
    expect(page.locator(".messagelist")).to_contain_text(f"Resumed {Q}")
    wait_for(lambda: queue_status(Q).job_counts["completed"] == 4, timeout=30)
    assert r.llen("test:started") == 4
