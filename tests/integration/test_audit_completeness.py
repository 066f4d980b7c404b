"""Every manage-scope action writes exactly one audit event, from HTTP, CLI and Python.

Refused actions write none, and a dead-letter requeue is audited only once
its new job exists (DESIGN §8.4: the service writes the event, front ends
pass the actor).
"""

from __future__ import annotations

import getpass
from io import StringIO
from typing import Any

import pytest
import redis
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from deadletter import services
from deadletter.models import AuditEvent, DeadLetter
from queues import store
from queues.exceptions import (
    BackendUnavailable,
    InvalidJobState,
    JobNotFound,
    JobValidationError,
)
from queues.jobs import cancel_job, change_priority, enqueue, get_job
from queues.store import keys
from tests.conftest import bearer
from tests.integration.test_deadletter_services import Q, record
from tests.redis_plugin import free_port
from workers import presence

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db]
ACTOR = "client:ops-bot"


class Audited:
    """Runs one action and returns the audit events it wrote, as tuples."""

    def __init__(self) -> None:
        self.seen = AuditEvent.objects.count()

    def __call__(self) -> list[tuple[str, str, str]]:
        rows = list(AuditEvent.objects.order_by("pk")[self.seen:])
        self.seen += len(rows)
        return [(e.action, e.actor, e.job_id) for e in rows]


def http(method: str, path: str, body: Any = None, status: int = 200) -> Any:
    client = Client(headers=bearer("queues:manage", "queues:enqueue", sub="ops-bot"))
    kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.content
    return response.json()


def test_each_queue_and_worker_endpoint_writes_one_event_with_the_token_actor(
        r: redis.Redis) -> None:
    events = Audited()
    http("post", "/queues", {"name": "audited", "config": {}}, 201)
    assert events() == [("create_queue", ACTOR, "")]
    for verb in ("pause", "resume"):
        http("post", f"/queues/{Q}/{verb}")
        assert events() == [(verb, ACTOR, "")]
    http("post", f"/queues/{Q}/scale", {"targetWorkers": 3})
    assert events() == [("scale", ACTOR, "")]
    entry = http("post", f"/queues/{Q}/recurring",
                 {"name": "t-echo", "data": {"value": 1}, "cron": "0 * * * *"}, 201)["id"]
    http("delete", f"/queues/{Q}/recurring/{entry}")
    assert events() == [("recurring_create", ACTOR, ""), ("recurring_cancel", ACTOR, "")]
    presence.heartbeat(presence.Heartbeat("w1@host", 1, (Q,), 2, store.now_ms(), 0, 0, 0.0))
    http("post", "/workers/w1@host/pause")
    http("post", "/workers/w1@host/resume")
    assert events() == [("pause_worker", ACTOR, ""), ("resume_worker", ACTOR, "")]
    http("delete", "/queues/audited")
    assert events() == [("destroy_queue", ACTOR, "")]


def test_each_job_and_dead_letter_endpoint_writes_one_event_with_its_job_id(
        r: redis.Redis) -> None:
    events = Audited()
    job = http("post", f"/queues/{Q}/jobs", {"name": "t-echo", "data": {"value": 1}}, 201)["id"]
    assert events() == [], "enqueue is not a management action"
    http("post", f"/queues/{Q}/jobs/{job}/priority", {"priority": 5})
    assert events() == [("change_priority", ACTOR, job)]
    assert http("delete", f"/queues/{Q}/jobs/{job}")["outcome"] == "cancelled"
    assert events() == [("cancel_job", ACTOR, job)]
    later = http("post", f"/queues/{Q}/jobs", {"name": "t-echo", "data": {"value": 2},
                                              "options": {"delay_ms": 600_000}}, 201)["id"]
    assert http("post", f"/queues/{Q}/jobs/{later}/promote") == {"id": later, "state": "waiting"}
    assert events() == [("promote_job", ACTOR, later)]
    http("post", f"/queues/{Q}/jobs/{later}/promote", status=409)
    http("post", f"/queues/{Q}/jobs/no-such-job/promote", status=404)
    assert events() == []
    record("dl-a")
    record("dl-b")
    http("post", f"/queues/{Q}/failed/dl-a/requeue")
    assert events() == [("requeue", ACTOR, "dl-a")]
    http("post", f"/queues/{Q}/failed/dl-b/archive")
    assert events() == [("archive", ACTOR, "dl-b")]
    http("delete", f"/queues/{Q}/failed")
    assert events() == [("purge", ACTOR, "")]
    assert sorted(AuditEvent.objects.get(action="purge").details["job_ids"]) == ["dl-a", "dl-b"]


def test_refused_job_actions_over_http_write_no_event(r: redis.Redis) -> None:
    handle = enqueue(Q, "t-echo", {"value": 1})
    cancel_job(Q, handle.id, actor="alice")
    events = Audited()
    http("delete", f"/queues/{Q}/jobs/{handle.id}", status=409)
    http("post", f"/queues/{Q}/jobs/{handle.id}/priority", {"priority": 1}, 409)
    http("delete", f"/queues/{Q}/jobs/no-such-job", status=404)
    http("post", f"/queues/{Q}/jobs/no-such-job/priority", {"priority": 1}, 404)
    http("post", f"/queues/{Q}/jobs/{handle.id}/priority", {"priority": 10}, 422)
    assert events() == []


def cli(*args: str) -> str:
    out = StringIO()
    call_command("jobqueue", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_cli_cancel_and_priority_verbs_are_audited_with_the_cli_user(r: redis.Redis) -> None:
    actor = f"cli:{getpass.getuser()}"
    first, second = enqueue(Q, "t-echo", {"value": 1}), enqueue(Q, "t-echo", {"value": 2})
    events = Audited()
    assert cli("priority", Q, first.id, "7").strip() == f"{Q}/{first.id}: priority 7"
    assert get_job(Q, first.id).priority == 7
    delayed = enqueue(Q, "t-echo", {"value": 3}, delay_ms=600_000)
    assert cli("promote", Q, delayed.id).strip() == f"{Q}/{delayed.id}: waiting (promoted)"
    assert get_job(Q, delayed.id).state == "waiting"
    assert cli("cancel", Q, second.id).strip() == f"{Q}/{second.id}: cancelled"
    assert get_job(Q, second.id).state == "cancelled"
    assert events() == [("change_priority", actor, first.id), ("promote_job", actor, delayed.id),
                        ("cancel_job", actor, second.id)]
    event = AuditEvent.objects.get(action="change_priority")
    assert (event.target_type, event.target_id, event.queue) == ("job", first.id, Q)
    assert (event.details["previous"], event.details["priority"]) == (0, 7)


@pytest.mark.parametrize(("args", "message"), [
    (("cancel", Q, "no-such-job"), "Job 'no-such-job' not found"),
    (("priority", Q, "no-such-job", "1"), "Job 'no-such-job' not found"),
    (("priority", Q, "{job}", "10"), "priority: Input should be less than or equal to 9"),
    (("cancel", Q, "{cancelled}"), "is cancelled; only waiting, delayed or active"),
    (("promote", Q, "{job}"), "is waiting; only delayed jobs can be promoted"),
    (("promote", Q, "no-such-job"), "Job 'no-such-job' not found"),
])
def test_cli_job_verbs_refuse_bad_input_with_a_sentence_and_no_event(
        r: redis.Redis, args: tuple[str, ...], message: str) -> None:
    job = enqueue(Q, "t-echo", {"value": 1}).id
    cancelled = enqueue(Q, "t-echo", {"value": 2}).id
    cancel_job(Q, cancelled)
    events = Audited()
    with pytest.raises(CommandError, match=message):
        cli(*(a.format(job=job, cancelled=cancelled) for a in args))
    assert events() == []
    assert get_job(Q, job).priority == 0


def test_python_callers_are_audited_too(r: redis.Redis) -> None:
    handle = enqueue(Q, "t-echo", {"value": 1})
    events = Audited()
    change_priority(Q, handle.id, 3)
    assert cancel_job(Q, handle.id, actor="app:billing") == "cancelled"
    assert events() == [("change_priority", "system", handle.id),
                        ("cancel_job", "app:billing", handle.id)]
    with pytest.raises(InvalidJobState):
        cancel_job(Q, handle.id)
    with pytest.raises(JobNotFound):
        change_priority(Q, "missing", 1)
    assert events() == []


def test_a_requeue_whose_enqueue_is_refused_writes_no_requeue_event(r: redis.Redis) -> None:
    # t-echo's schema wants an int: the strict rules refuse the stored payload.
    row = record("bad-payload", name="t-echo", payload='{"value": "not a number"}')
    events = Audited()
    with pytest.raises(JobValidationError, match=r"data\.value"):
        services.requeue_dead_letter(row.pk, actor="alice")
    http("post", f"/queues/{Q}/failed/bad-payload/requeue", status=422)
    assert events() == []
    row.refresh_from_db()
    assert (row.status, row.requeued_as, row.acted_by) == ("open", "", "")
    assert not r.exists(keys.job(Q, "bad-payload:r1"))


def test_a_requeue_while_redis_is_unreachable_writes_no_requeue_event(r: redis.Redis) -> None:
    row = record("redis-down")
    events = Audited()
    # The job store points at a port nothing listens on (the broker connections
    # of this process stay as they are, for the tests that follow).
    with override_settings(COORDINATOR_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"), \
            pytest.raises(BackendUnavailable):
        services.requeue_dead_letter(row.pk, actor="alice")
    assert events() == []
    assert DeadLetter.objects.get(pk=row.pk).status == "open"
    assert services.requeue_dead_letter(row.pk, actor="alice").job_id == "redis-down:r1"
    assert events() == [("requeue", "alice", "redis-down")], "audited once the job exists"
    assert get_job(Q, "redis-down:r1").state == "waiting"
