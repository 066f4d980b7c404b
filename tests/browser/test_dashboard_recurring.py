"""The dashboard's Recurring page in a real browser: an operator filters the schedules,
disables one (confirming the question) and sees it disabled with the message; a
question answered "cancel" sends nothing. Screenshots go to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from celery.schedules import crontab
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import Dialog, Page, expect

from queues.jobs.producer import job_task
from queues.ops.beat import enqueue_run
from queues.ops.scheduling import schedule_recurring
from tests.browser.conftest import log_in, operator, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
Q = "photo-processing"


def test_an_operator_disables_a_recurring_job_and_sees_it_disabled(
        page: Page, live_server: Any, builtin_queue_types: None, r: redis.Redis) -> None:
    nightly = schedule_recurring(Q, "t-echo", {"value": 1, "note": "nightly <b>check</b>"},
                                 "30 2 * * *", timezone="Europe/Paris", max_runs=30)
    enqueue_run(job_task(f"{Q}:t-echo"), PeriodicTask.objects.get(pk=nightly.id),
                datetime(2030, 1, 1, 1, 30, tzinfo=UTC), crontab(minute="*"))
    cleanup = schedule_recurring("batch-processing", "batch-cleanup", {"batchId": "b-1"},
                                 "0 */6 * * *")
    log_in(page, live_server.url, operator("view_dashboard", "manage_jobs"), "/admin/dashboard/")
    page.click("#jq-nav-recurring")
    row = page.locator(f'tr[data-recurring="{nightly.id}"]')
    expect(row.locator(".jq-recurring-enabled")).to_have_text("enabled")
    expect(row.locator(".jq-recurring-next time")).to_have_count(3)
    expect(row.locator(".jq-recurring-runs")).to_have_text("1 / 30")
    expect(row.locator(".jq-recurring-last a")).to_have_text(
        f"recurring:{nightly.id}:20300101T013000Z")
    expect(row.locator(".jq-recurring-payload")).to_contain_text("<b>check</b>")  # as text
    expect(page.locator(f'tr[data-recurring="{cleanup.id}"]')).to_be_visible()
    shot(page, "recurring")

    page.select_option("#jq-recurring-filter select", "batch-processing")
    page.click("#jq-recurring-filter button")
    expect(page.locator("#jq-recurring tr[data-recurring]")).to_have_count(1)
    expect(page.locator(f'tr[data-recurring="{cleanup.id}"]')).to_be_visible()
    page.click("#jq-recurring-filter a")  # back to every queue
    expect(page.locator("#jq-recurring tr[data-recurring]")).to_have_count(2)

    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.locator("button.jq-recurring-disable").click()
    expect(page.locator("ul.messagelist")).to_contain_text(
        f"Disabled recurring job {nightly.id} (t-echo on {Q}).")
    expect(row.locator(".jq-recurring-enabled")).to_have_text("disabled")
    expect(row.locator(".jq-recurring-next")).to_have_text("none")
    assert asked and asked[0].startswith(f"Disable recurring job {nightly.id}")
    assert not PeriodicTask.objects.get(pk=nightly.id).enabled
    shot(page, "recurring-disabled")

    page.evaluate("window.__jqSamePage = true")  # gone if the form is sent
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.locator("button.jq-recurring-enable").click()
    expect(row.locator("button.jq-recurring-enable")).to_be_visible()
    assert page.evaluate("window.__jqSamePage") is True
    assert not PeriodicTask.objects.get(pk=nightly.id).enabled
