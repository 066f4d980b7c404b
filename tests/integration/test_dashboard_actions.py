"""The dashboard's actions through Django's test client: on ticked jobs and on one job,
on every job matching a filter (a maintenance job run by a real worker), pausing and
resuming queues and workers, scaling; each with its permission, its CSRF check, its
report and its audit events, and each refusal changing nothing."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import redis
from django.test import Client

from deadletter.models import AuditEvent, DeadLetter
from queues import jobs, store
from queues.exceptions import InvalidJobState, JobNotFound
from queues.jobs import enqueue, enqueue_many, get_job
from queues.ops import bulk, manager
from queues.store import keys
from tests.conftest import staff_client, staff_user, wait_for
from tests.integration.test_deadletter_services import record
from workers import presence

pytestmark = pytest.mark.django_db
Q = "photo-processing"
ACT = f"/admin/dashboard/queues/{Q}/act"


@pytest.fixture
def manager_client() -> Client:
    return staff_client("queues", "view_dashboard", "manage_jobs")


def said(client: Client, reply: Any) -> list[str]:
    """The messages the page an action went back to shows (admin's message list)."""
    assert reply.status_code == 303, reply.content
    page = client.get(reply["Location"]).content.decode()
    listed = re.search(r'<ul class="messagelist">(.*?)</ul>', page, re.S)
    return [html.unescape(item).strip() for item in
            re.findall(r"<li[^>]*>(.*?)</li>", listed.group(1), re.S)] if listed else []


def states(ids: list[str]) -> list[str]:
    return [get_job(Q, job_id).state for job_id in ids]


def test_promote_job_makes_a_delayed_job_waiting_now_and_refuses_other_states(
        r: redis.Redis) -> None:
    delayed = enqueue(Q, "t-echo", {"value": 1}, delay_ms=3_600_000)
    before = store.now_ms()
    jobs.promote_job(Q, delayed.id, actor="alice")
    info = get_job(Q, delayed.id)
    assert info.state == "waiting"
    assert info.run_at is not None and info.run_at.timestamp() * 1000 >= before
    assert r.zscore(keys.state_index(Q, "delayed"), delayed.id) is None
    assert r.zscore(keys.state_index(Q, "waiting"), delayed.id) is not None
    assert manager.queue_status(Q).job_counts["waiting"] == 1
    event = AuditEvent.objects.get(action="promote_job")
    assert (event.actor, event.job_id, event.queue) == ("alice", delayed.id, Q)
    with pytest.raises(InvalidJobState, match="is waiting; only delayed jobs"):
        jobs.promote_job(Q, delayed.id)
    with pytest.raises(JobNotFound):
        jobs.promote_job(Q, "no-such-job")
    assert AuditEvent.objects.filter(action="promote_job").count() == 1


def test_cancel_on_ticked_jobs_reports_how_many_and_skips_the_ones_it_cannot(
        manager_client: Client, r: redis.Redis) -> None:
    ids = [h.id for h in enqueue_many(Q, "t-echo", [{"value": n} for n in range(3)])]
    jobs.cancel_job(Q, ids[2])
    reply = manager_client.post(ACT, {"action": "cancel", "ids": ids, "state": "waiting",
                                      "back": f"/admin/dashboard/queues/{Q}/?state=waiting"})
    assert reply.status_code == 303
    assert reply["Location"] == f"/admin/dashboard/queues/{Q}/?state=waiting"
    [message] = said(manager_client, reply)
    assert message.startswith("2 jobs cancelled; 1 skipped (")
    assert "is cancelled" in message
    assert states(ids) == ["cancelled"] * 3
    user = reply.wsgi_request.user.get_username()
    assert list(AuditEvent.objects.filter(action="cancel_job").order_by("pk").values_list(
        "actor", "job_id")) == [("system", ids[2]), (user, ids[0]), (user, ids[1])]


def test_one_job_actions_promote_then_change_priority_then_cancel(
        manager_client: Client, r: redis.Redis) -> None:
    handle = enqueue(Q, "t-echo", {"value": 1}, delay_ms=3_600_000)
    page = f"/admin/dashboard/queues/{Q}/jobs/{handle.id}/"
    shown = manager_client.get(page).content.decode()
    for offered in ("promote", "priority", "cancel"):
        assert f'data-action="{offered}"' in shown
    assert 'data-action="retry"' not in shown
    reply = manager_client.post(ACT, {"action": "promote", "ids": handle.id, "back": page})
    assert reply["Location"] == page
    assert said(manager_client, reply) == ["1 job promoted."]
    assert get_job(Q, handle.id).state == "waiting"
    reply = manager_client.post(ACT, {"action": "priority", "ids": handle.id, "priority": "7"})
    assert said(manager_client, reply) == ["1 job given the new priority."]
    assert get_job(Q, handle.id).priority == 7
    manager_client.post(ACT, {"action": "cancel", "ids": handle.id})
    assert get_job(Q, handle.id).state == "cancelled"
    assert "data-action=" not in manager_client.get(page).content.decode(), \
        "a cancelled job offers nothing"


@pytest.mark.parametrize("priority", ["", "ten", "10", "-1"])
def test_a_bad_priority_changes_nothing_and_says_why(
        manager_client: Client, r: redis.Redis, priority: str) -> None:
    handle = enqueue(Q, "t-echo", {"value": 1})
    reply = manager_client.post(ACT, {"action": "priority", "ids": handle.id,
                                      "priority": priority})
    assert reply.status_code == 303
    [message] = said(manager_client, reply)
    assert message.startswith("Nothing was done: ") and "priority" in message
    assert get_job(Q, handle.id).priority == 0
    assert not AuditEvent.objects.filter(action="change_priority").exists()


def test_retry_of_a_failed_job_requeues_its_dead_letter_and_needs_the_requeue_permission(
        r: redis.Redis) -> None:
    row = record("dl-a")
    may_view_manage = staff_client("queues", "view_dashboard", "manage_jobs")
    reply = may_view_manage.post(ACT, {"action": "retry", "ids": "dl-a"})
    assert reply.status_code == 403
    assert DeadLetter.objects.get(pk=row.pk).status == "open"
    may_requeue = staff_client("queues", "view_dashboard", "deadletter.requeue_deadletter")
    reply = may_requeue.post(ACT, {"action": "retry", "ids": ["dl-a", "no-dead-letter"]})
    [message] = said(may_requeue, reply)
    assert message.startswith("1 job retried; 1 skipped (No dead letter for job 'no-dead-letter'")
    row.refresh_from_db()
    assert (row.status, row.requeued_as) == ("requeued", "dl-a:r1")
    assert get_job(Q, "dl-a:r1").state == "waiting"
    assert AuditEvent.objects.get(action="requeue").job_id == "dl-a"


def test_a_job_page_links_its_dead_letter_and_the_job_it_was_requeued_as_and_from(
        r: redis.Redis) -> None:
    row = record("dl-b")
    viewer = staff_client("queues", "view_dashboard", "deadletter.requeue_deadletter")
    viewer.post(ACT, {"action": "retry", "ids": "dl-b"})
    page = viewer.get(f"/admin/dashboard/queues/{Q}/jobs/dl-b:r1/").content.decode()
    assert f'href="/admin/dashboard/queues/{Q}/jobs/dl-b/"' in page
    assert "Requeued from job dl-b" in page
    assert f'href="/admin/deadletter/deadletter/{row.pk}/change/"' in page


@pytest.mark.parametrize(("data", "status"), [
    ({"action": "explode", "ids": "x"}, 400),
    ({"action": "cancel", "ids": [f"j{n}" for n in range(501)]}, 400),
])
def test_hostile_action_posts_are_refused_with_a_sentence(
        manager_client: Client, r: redis.Redis, data: dict[str, Any], status: int) -> None:
    handle = enqueue(Q, "t-echo", {"value": 1})
    reply = manager_client.post(ACT, data)
    assert reply.status_code == status
    assert reply.content.decode().strip()
    assert get_job(Q, handle.id).state == "waiting"
    assert manager_client.post("/admin/dashboard/queues/no-such-queue/act",
                               {"action": "cancel", "ids": handle.id}).status_code == 404


def test_an_action_needs_post_csrf_and_the_permission_and_otherwise_changes_nothing(
        r: redis.Redis) -> None:
    handle = enqueue(Q, "t-echo", {"value": 1})
    viewer = staff_client("queues", "view_dashboard")
    assert viewer.post(ACT, {"action": "cancel", "ids": handle.id}).status_code == 403
    assert viewer.post(f"/admin/dashboard/queues/{Q}/pause").status_code == 403
    assert "data-action=" not in viewer.get(f"/admin/dashboard/queues/{Q}/").content.decode()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user("queues", "view_dashboard", "manage_jobs"))
    assert strict.post(ACT, {"action": "cancel", "ids": handle.id}).status_code == 403
    assert strict.post(f"/admin/dashboard/queues/{Q}/pause").status_code == 403
    assert strict.get(ACT).status_code == 405
    assert get_job(Q, handle.id).state == "waiting"
    assert not manager.queue_status(Q).is_paused
    assert not AuditEvent.objects.exists()


def test_a_back_address_off_this_site_is_not_followed(
        manager_client: Client, r: redis.Redis) -> None:
    handle = enqueue(Q, "t-echo", {"value": 1})
    reply = manager_client.post(ACT, {"action": "cancel", "ids": handle.id,
                                      "back": "https://evil.example/"})
    assert reply["Location"] == f"/admin/dashboard/queues/{Q}/"


def test_pause_and_resume_a_queue_from_its_page(manager_client: Client, r: redis.Redis) -> None:
    page = manager_client.get(f"/admin/dashboard/queues/{Q}/").content.decode()
    assert 'id="jq-queue-pause"' in page
    reply = manager_client.post(f"/admin/dashboard/queues/{Q}/pause")
    assert reply.status_code == 303 and said(manager_client, reply)[0].startswith(f"Paused {Q}")
    assert manager.queue_status(Q).is_paused
    assert 'id="jq-queue-resume"' in manager_client.get(
        f"/admin/dashboard/queues/{Q}/").content.decode()
    reply = manager_client.post(f"/admin/dashboard/queues/{Q}/resume")
    assert said(manager_client, reply) == [f"Resumed {Q}; 0 parked jobs released."]
    assert not manager.queue_status(Q).is_paused
    assert [e.action for e in AuditEvent.objects.order_by("pk")] == ["pause", "resume"]
    assert manager_client.post("/admin/dashboard/queues/nope/pause").status_code == 404


def test_pause_and_resume_a_worker_and_scale_a_queue_from_the_workers_page(
        manager_client: Client, r: redis.Redis) -> None:
    presence.heartbeat(presence.Heartbeat("w1@host", 1, (Q,), 2, store.now_ms(), 0, 0, 0.0))
    page = manager_client.get("/admin/dashboard/workers/").content.decode()
    assert 'action="/admin/dashboard/workers/w1@host/pause"' in page
    assert '<tr data-queue="photo-processing">' in page
    reply = manager_client.post("/admin/dashboard/workers/w1@host/pause")
    assert said(manager_client, reply) == ["Worker w1@host is paused."]
    assert presence.worker_status("w1@host").status == "paused"
    reply = manager_client.post("/admin/dashboard/workers/w1@host/resume")
    assert said(manager_client, reply) == ["Worker w1@host is active."]
    assert manager_client.post("/admin/dashboard/workers/nobody@host/pause").status_code == 404
    for target in ("", "many", "-1", "1001"):
        reply = manager_client.post(f"/admin/dashboard/workers/scale/{Q}", {"target": target})
        assert said(manager_client, reply)[0].startswith("Nothing was scaled: the target must be")
    assert not AuditEvent.objects.filter(action="scale").exists()
    reply = manager_client.post(f"/admin/dashboard/workers/scale/{Q}", {"target": "5"})
    assert reply.status_code == 303
    assert AuditEvent.objects.get(action="scale").details["target"] == 5
    page = manager_client.get("/admin/dashboard/workers/").content.decode()
    assert '<td class="jq-num jq-wanted">5</td>' in page
    viewer = staff_client("queues", "view_dashboard")
    assert viewer.post("/admin/dashboard/workers/w1@host/pause").status_code == 403
    assert viewer.post(f"/admin/dashboard/workers/scale/{Q}", {"target": "1"}).status_code == 403
    assert "dashboard/workers/w1@host/pause" not in viewer.get(
        "/admin/dashboard/workers/").content.decode()


def test_bulk_act_skips_and_goes_on_and_checks_the_priority_before_anything(
        r: redis.Redis) -> None:
    ids = [h.id for h in enqueue_many(Q, "t-echo", [{"value": n} for n in range(4)])]
    with pytest.raises(Exception, match="priority"):
        bulk.act(Q, "priority", ids, actor="a", params={"priority": "11"})
    assert [get_job(Q, i).priority for i in ids] == [0] * 4
    seen: list[int] = []

    def progress(result: bulk.BulkResult) -> bool:
        seen.append(result.done + result.skipped)
        return False

    result = bulk.act(Q, "cancel", [*ids, "gone"], actor="a")
    assert (result.done, result.skipped) == (4, 1)
    assert result.reasons == ["Job 'gone' not found in queue 'photo-processing'"]
    many = [h.id for h in enqueue_many(Q, "t-echo", [{"value": n} for n in range(bulk.CHUNK + 5)])]
    stopped = bulk.act(Q, "cancel", many, actor="a", progress=progress)
    assert (stopped.done, seen) == (bulk.CHUNK, [bulk.CHUNK]), "stops when told, after a chunk"


@pytest.mark.django_db(transaction=True)  # the worker writes audit events to the same database
def test_every_matching_job_runs_as_a_maintenance_job_that_reports_its_progress(
        builtin_queue_types: None, r: redis.Redis, worker_process: Any) -> None:
    manager_client = staff_client("queues", "view_dashboard", "manage_jobs")
    wanted = [h.id for h in enqueue_many(Q, "t-echo", [{"value": n} for n in range(30)],
                                         delay_ms=3_600_000)]
    other = [h.id for h in enqueue_many(Q, "t-sleep", [{"ms": 1}] * 5, delay_ms=3_600_000)]
    reply = manager_client.post(ACT, {"action": "cancel", "all": "1", "state": "delayed",
                                      "type": "t-echo", "q": ""})
    assert reply.status_code == 303
    bulk_id = reply["Location"].split("/jobs/")[1].rstrip("/")
    assert reply["Location"] == f"/admin/dashboard/queues/maintenance/jobs/{bulk_id}/"
    assert "as maintenance job" in said(manager_client, reply)[0]
    started = AuditEvent.objects.get(action="bulk_action")
    assert started.details["state"] == "delayed" and started.details["job_type"] == "t-echo"
    worker_process(("maintenance",), pool="solo", concurrency=1)
    wait_for(lambda: get_job("maintenance", bulk_id).state in {"completed", "failed"}, timeout=60)
    info = get_job("maintenance", bulk_id)
    assert info.state == "completed", (info.error, info.traceback)
    assert info.result == {"matched": 30, "done": 30, "skipped": 0, "reasons": []}
    assert info.progress == 100
    assert info.logs[-1]["message"] == "30 jobs cancelled."
    assert states(wanted) == ["cancelled"] * 30
    assert states(other) == ["delayed"] * 5
    assert AuditEvent.objects.filter(action="cancel_job").count() == 30
    page = manager_client.get(reply["Location"]).content.decode()
    assert 'id="jq-job-progress" max="100" value="100"' in page
    assert "hx-trigger" not in page, "a finished job's page stops refreshing"


def test_an_action_refused_for_its_state_or_filter_starts_no_maintenance_job(
        manager_client: Client, r: redis.Redis) -> None:
    for data in ({"action": "promote", "all": "1", "state": "waiting"},
                 {"action": "cancel", "all": "1", "state": "nonsense"}):
        reply = manager_client.post(ACT, data)
        assert said(manager_client, reply)[0].startswith("Nothing was done: ")
    assert manager.queue_status("maintenance").job_counts["waiting"] == 0
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_each_failed_attempt_is_on_the_job_page_with_its_worker_and_error(
        builtin_queue_types: None, r: redis.Redis, worker_process: Any) -> None:
    flaky = enqueue(Q, "t-flaky", {"succeed_on": 3}, remove_on_complete=False)
    doomed = enqueue(Q, "t-always-fails", {"item": "<img src=x onerror=alert(1)>"})
    worker = worker_process((Q,), pool="solo", concurrency=1)
    wait_for(lambda: get_job(Q, flaky.id).state == "completed"
             and get_job(Q, doomed.id).state == "failed", timeout=60)
    attempts = get_job(Q, flaky.id).attempt_log
    assert [(a["attempt"], a["error_type"], a["error"]) for a in attempts] == [
        (1, "ConnectionError", "transient failure on attempt 1"),
        (2, "ConnectionError", "transient failure on attempt 2")]
    name = worker.hostname.split("@")[0]
    assert all(a["worker"].startswith(f"{name}@") and 0 < a["started_at"] <= a["failed_at"]
               for a in attempts)
    [last] = get_job(Q, doomed.id).attempt_log
    assert (last["attempt"], last["error_type"]) == (1, "LookupError")
    viewer = staff_client("queues", "view_dashboard")
    page = viewer.get(f"/admin/dashboard/queues/{Q}/jobs/{flaky.id}/").content.decode()
    assert page.count("transient failure on attempt") >= 2
    page = viewer.get(f"/admin/dashboard/queues/{Q}/jobs/{doomed.id}/").content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_worker_named_with_markup_is_text_on_the_workers_page(
        manager_client: Client, r: redis.Redis) -> None:
    hostile = '"><img src=x onerror=alert(1)>@host'
    presence.heartbeat(presence.Heartbeat(hostile, 1, (Q,), 2, store.now_ms(), 0, 0, 0.0))
    page = manager_client.get("/admin/dashboard/workers/").content.decode()
    assert "<img src=x" not in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;@host" in page
