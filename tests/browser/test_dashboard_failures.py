"""The Failures and Audit pages in Chromium: requeue a failure group from the browser,
then find the requeues on the Audit page, linked to their dead letters."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from playwright.sync_api import Dialog, Page, expect

from deadletter.models import DeadLetter
from tests.browser.conftest import log_in, operator, shot
from tests.integration.test_dashboard_failures import dead
from tests.integration.test_deadletter_services import Q

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_requeue_a_failure_group_and_see_it_audited(
        page: Page, live_server: Any, builtin_queue_types: None, r: redis.Redis) -> None:
    rows = [dead(f"photo-{n}", f"photo {n * 37} not found in 'bucket-{n}'", hours_ago=n * 3)
            for n in range(3)]
    dead("disk-1", "no space left on device: '/var/tmp/x'", error="OSError", hours_ago=1,
         name="t-boom")
    dead("batch-1", "photo 8 not found in 'b'", queue="batch-processing", hours_ago=5)
    group = f'tr[data-group="{Q}/{rows[0].fingerprint}"]'
    user = operator("view_dashboard", "deadletter.requeue_deadletter",
                    "deadletter.archive_deadletter", "deadletter.view_deadletter")
    log_in(page, live_server.url, user, "/admin/dashboard/")
    page.click("#jq-nav-failures")
    expect(page.locator("#jq-failures tr[data-group]")).to_have_count(3)
    expect(page.locator(f"{group} .jq-failure-count")).to_have_text("3")
    expect(page.locator(f"{group} code")).to_have_text("ValueError: photo <n> not found in <str>")
    expect(page.locator(f"{group} svg.jq-spark rect.jq-spark-on")).to_have_count(3)
    shot(page, "failures")

    questions: list[str] = []

    def agree(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", agree)
    page.click(f"{group} button.jq-requeue")
    expect(page.locator("ul.messagelist li.success")).to_have_text("Requeued 3 dead letters.")
    assert questions == ["Requeue all 3 open dead letters in this group as new jobs?"]
    expect(page.locator(group)).to_have_count(0)
    assert set(DeadLetter.objects.filter(pk__in=[row.pk for row in rows]).values_list(
        "status", flat=True)) == {"requeued"}
    page.select_option("#id_status", "requeued")
    page.click("#jq-failures-filter button")
    expect(page.locator(f"{group} .jq-failure-count")).to_have_text("3")
    expect(page.locator(f"{group} button")).to_have_count(0)

    page.click("#jq-nav-audit")
    requeues = page.locator('#jq-audit tr[data-action="requeue"]')
    expect(requeues).to_have_count(3)
    for row in rows:
        link = page.locator(f'#jq-audit a[href="/admin/deadletter/deadletter/{row.pk}/change/"]')
        expect(link).to_have_text(f"dead letter {row.pk}")
    expect(requeues.first).to_contain_text(user)
    shot(page, "audit")
    page.click(f'#jq-audit a[href="/admin/deadletter/deadletter/{rows[0].pk}/change/"]')
    expect(page.locator("#content h2")).to_contain_text(f"{Q}/{rows[0].job_id}")
