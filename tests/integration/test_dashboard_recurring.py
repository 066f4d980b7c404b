"""The dashboard's Recurring page through Django's test client: each schedule's row, the
queue filter, enable and disable (permission, CSRF, method), and escaping (the browser
suite, tests/browser/test_dashboard_recurring.py, drives it in Chromium)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from celery.schedules import crontab
from django.test import Client
from django_celery_beat.models import PeriodicTask

from deadletter.models import AuditEvent
from queues.jobs.producer import job_task
from queues.ops import scheduling
from queues.ops.beat import enqueue_run
from queues.ops.scheduling import RepeatableJob, schedule_recurring
from tests.conftest import staff_client, staff_user

pytestmark = pytest.mark.django_db
Q = "photo-processing"
PAGE = "/admin/dashboard/recurring/"


def staff(*perms: str) -> Client:
    return staff_client("queues", *perms)


@pytest.fixture
def viewer() -> Client:
    return staff("view_dashboard")


@pytest.fixture
def manager() -> Client:
    return staff("view_dashboard", "manage_jobs")


def row_of(page: str, job: RepeatableJob) -> str:
    """The HTML of ``job``'s row on the page."""
    match = re.search(rf'<tr data-recurring="{job.id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for recurring job {job.id}"
    return match.group(1)


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def enabled(job: RepeatableJob) -> bool:
    return PeriodicTask.objects.get(pk=job.id).enabled


def test_each_schedule_shows_its_next_three_runs_in_its_timezone_and_its_last_job(
        viewer: Client, r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "30 9 * * 1", timezone="Europe/Paris",
                             max_runs=5)
    run = enqueue_run(job_task(f"{Q}:t-echo"), PeriodicTask.objects.get(pk=job.id),
                      datetime(2030, 1, 7, 8, 30, tzinfo=UTC), crontab(minute="*"))
    assert run is not None and run.created
    reply = viewer.get(PAGE)
    assert reply.status_code == 200
    row = row_of(reply.content.decode(), job)
    assert f'href="/admin/dashboard/queues/{Q}/"' in row
    times = [datetime.fromisoformat(t) for t in re.findall(r'<time datetime="([^"]+)"', row)]
    assert len(times) == 3 and times == sorted(times)
    assert times[0] > datetime.now(UTC) and times[2] - times[0] == timedelta(weeks=2)
    for when in times:  # shown in Paris time: Monday 09:30, CET or CEST
        local = when.astimezone(ZoneInfo("Europe/Paris"))
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 30)
        assert when.utcoffset() == local.utcoffset()
        assert re.search(rf"{when:%Y-%m-%d} 09:30 CES?T", text_of(row))
    cells = text_of(row)
    for shown in ("t-echo", "30 9 * * 1", "Europe/Paris", "1 / 5", "enabled", "waiting"):
        assert shown in cells, shown
    assert f'href="/admin/dashboard/queues/{Q}/jobs/{run.id}/"' in row
    assert "/disable" not in row  # a viewer gets no buttons


def test_a_disabled_or_finished_schedule_has_no_next_runs(
        manager: Client, r: redis.Redis) -> None:
    off = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *")
    scheduling.set_recurring_enabled(off.id, False)
    done = schedule_recurring(Q, "t-echo", {"value": 2}, "* * * * *", max_runs=1)
    enqueue_run(job_task(f"{Q}:t-echo"), PeriodicTask.objects.get(pk=done.id),
                datetime(2030, 1, 1, 12, tzinfo=UTC), crontab(minute="*"))
    page = manager.get(PAGE).content.decode()
    for job in (off, done):
        row = row_of(page, job)
        assert "<time" not in row and "disabled" in text_of(row)
    assert "/enable" in row_of(page, off) and "no run yet" in text_of(row_of(page, off))
    assert "/enable" not in row_of(page, done)  # it has run its max_runs: it cannot run again
    assert "finished: it has run 1 of max_runs=1" in text_of(row_of(page, done))


def test_the_queue_filter_shows_one_queue_and_refuses_an_unknown_one(
        viewer: Client, r: redis.Redis) -> None:
    photo = schedule_recurring(Q, "t-echo", {"value": 1}, "0 * * * *")
    batch = schedule_recurring("batch-processing", "batch-cleanup", {}, "0 3 * * *")
    everything = viewer.get(PAGE).content.decode()
    assert f'data-recurring="{photo.id}"' in everything
    assert f'data-recurring="{batch.id}"' in everything
    only = viewer.get(PAGE, {"queue": "batch-processing"}).content.decode()
    assert f'data-recurring="{batch.id}"' in only and f'data-recurring="{photo.id}"' not in only
    assert '<option value="batch-processing" selected>' in only
    unknown = viewer.get(PAGE, {"queue": "no-such-queue"})
    assert unknown.status_code == 400
    assert "Queue type 'no-such-queue' is not registered" in unknown.content.decode()


def test_disable_then_enable_from_the_page(r: redis.Redis) -> None:
    user = staff_user("queues", "view_dashboard", "manage_jobs")
    manager = Client()
    manager.force_login(user)
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "*/5 * * * *")
    back = f"{PAGE}?queue={Q}"
    reply = manager.post(f"{PAGE}{job.id}/disable", {"back": back})
    assert (reply.status_code, reply["Location"]) == (303, back)
    assert not enabled(job)
    page = manager.get(back).content.decode()
    assert f"Disabled recurring job {job.id} (t-echo on {Q})." in page
    assert "disabled" in text_of(row_of(page, job))
    reply = manager.post(f"{PAGE}{job.id}/enable")
    assert (reply.status_code, reply["Location"]) == (303, PAGE)
    assert enabled(job)
    page = manager.get(PAGE).content.decode()
    assert f"Enabled recurring job {job.id} (t-echo on {Q})." in page
    assert len(re.findall("<time", row_of(page, job))) == 3
    assert list(AuditEvent.objects.order_by("pk").values_list("action", "actor", "target_id")) == [
        ("recurring_create", "system", job.id), ("disable_recurring", user.username, job.id),
        ("enable_recurring", user.username, job.id)]


def test_enabling_one_that_ran_its_max_runs_says_why_and_changes_nothing(
        manager: Client, r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *", max_runs=1)
    enqueue_run(job_task(f"{Q}:t-echo"), PeriodicTask.objects.get(pk=job.id),
                datetime(2030, 1, 1, 12, tzinfo=UTC), crontab(minute="*"))
    reply = manager.post(f"{PAGE}{job.id}/enable", follow=True)
    assert reply.redirect_chain == [(PAGE, 303)]
    assert (f"Recurring job {job.id} cannot be enabled: it has run 1 of max_runs=1"
            in reply.content.decode())
    assert not enabled(job)
    assert not AuditEvent.objects.filter(action="enable_recurring").exists()


def test_an_unknown_id_is_404_and_get_is_405(manager: Client, r: redis.Redis) -> None:
    assert manager.post(f"{PAGE}424242/disable").status_code == 404
    assert manager.post(f"{PAGE}not-a-number/enable").status_code == 404
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *")
    for action in ("enable", "disable"):
        assert manager.get(f"{PAGE}{job.id}/{action}").status_code == 405
    assert enabled(job)


def test_without_manage_jobs_an_action_is_403_and_changes_nothing(
        viewer: Client, r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *")
    assert viewer.post(f"{PAGE}{job.id}/disable").status_code == 403
    assert enabled(job)
    assert staff().get(PAGE).status_code == 403  # not even the page without view_dashboard
    anonymous = Client().post(f"{PAGE}{job.id}/disable")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    assert enabled(job)
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["recurring_create"]


def test_a_post_without_the_csrf_token_is_refused(r: redis.Redis) -> None:
    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user("queues", "view_dashboard", "manage_jobs"))
    assert strict.post(f"{PAGE}{job.id}/disable").status_code == 403
    assert enabled(job)
    page = strict.get(PAGE).content.decode()  # the page's own form carries the token
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    assert strict.post(f"{PAGE}{job.id}/disable",
                       {"csrfmiddlewaretoken": token.group(1)}).status_code == 303
    assert not enabled(job)


def test_a_payload_with_markup_is_text(manager: Client, r: redis.Redis) -> None:
    job = schedule_recurring("batch-processing", "batch-cleanup",
                             {"batchId": "<script>alert(1)</script>"}, "0 3 * * *")
    page = manager.get(PAGE).content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row_of(page, job)
