"""Flow control in the scripts: rate limits, global concurrency, groups and round-robin.

A test plays the worker (``tests.integration.worker_steps``), so each transition runs on
a real Redis without a worker's timing in the way.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from celery import current_app
from django.core.management import call_command

from deadletter.models import AuditEvent
from queues import store
from queues.exceptions import ConfigurationError, QueueTypeNotFound
from queues.jobs import cancel_job, change_priority, enqueue, enqueue_many, get_job, recovery
from queues.jobs.messages import broker_keys
from queues.ops import limits
from queues.ops.metrics import render
from queues.store import gate, keys
from tests import fixtures_tasks as t
from tests.conftest import bearer
from tests.integration.worker_steps import finish, run_in_turn, start

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("resilience_queue_of_30s")]
R = t.RESILIENCE


def in_broker(r: redis.Redis) -> int:
    return sum(int(r.llen(key)) for key in broker_keys(current_app, R))


def held(r: redis.Redis) -> int:
    return int(r.zcard(keys.state_index(R, "limited")))


def test_global_concurrency_lets_out_as_many_as_may_run(r: redis.Redis) -> None:
    limits.set_limits(R, {"concurrency": 2})
    handles = enqueue_many(R, "t-work", [{"n": i} for i in range(5)])
    assert in_broker(r) == 2 and held(r) == 3
    assert get_job(R, handles[4].id).state == "concurrency_limited"
    first, claim = start(r)
    assert claim.claimed and first == handles[0].id
    finish(first)  # its slot goes to the next held job in the same script
    assert in_broker(r) == 2 and held(r) == 2
    assert [start(r)[0] for _ in range(2)] == [handles[1].id, handles[2].id]
    assert in_broker(r) == 0  # two active: no room


def test_a_rate_limit_counts_starts_and_says_when_its_window_reopens(r: redis.Redis) -> None:
    limits.set_limits(R, {"rate_limit": {"max": 3, "duration_ms": 60000}})
    handles = enqueue_many(R, "t-work", [{"n": i} for i in range(5)])
    assert in_broker(r) == 3
    started = [start(r) for _ in range(3)]
    assert all(claim.claimed for _, claim in started)
    for job_id, _ in started:
        finish(job_id)  # finishing frees no rate slot
    assert in_broker(r) == 0 and held(r) == 2
    assert get_job(R, handles[3].id).state == "rate_limited"
    sent, wake = gate.pump(R)
    first_start = int(store.fields(R, handles[0].id, "processed_at")[0] or 0)
    assert sent == 0 and wake == first_start + 60000


def test_a_claim_over_a_lowered_limit_is_refused_and_the_job_held_in_its_place(
        r: redis.Redis) -> None:
    limits.set_limits(R, {"concurrency": 3})
    handles = enqueue_many(R, "t-work", [{"n": i} for i in range(4)])
    running, claim = start(r)
    assert claim.claimed
    limits.set_limits(R, {"concurrency": 1})  # at runtime: two messages are out already
    second, refused = start(r)
    assert not refused.claimed and refused.reason == "concurrency_limited"
    assert recovery.hold_back(R, second, gen=1)
    info = get_job(R, second)
    assert info.state == "concurrency_limited"
    assert store.fields(R, second, "gen") == ["2"]  # the refused message is a no-op now
    assert store.claim(R, second, gen=1, token="late", worker="w@test").reason == "limited"
    # it went back before the job that was held all along
    assert r.zrange(keys.state_index(R, "limited"), 0, 0) == [second.encode()]
    finish(running)
    assert start(r)[0] == handles[2].id  # the message already out runs first
    assert held(r) == 2


def test_groups_take_turns_so_a_small_tenant_is_not_stuck_behind_a_big_one(
        r: redis.Redis) -> None:
    limits.set_limits(R, {"concurrency": 1})
    big = enqueue_many(R, "t-work", [{"n": i} for i in range(20)], group="big")
    small = enqueue_many(R, "t-work", [{"n": i} for i in range(3)], group="small")
    assert run_in_turn(r, 8) == [big[0].id, big[1].id, small[0].id, big[2].id, small[1].id,
                                 big[3].id, small[2].id, big[4].id]


def test_group_concurrency_holds_a_group_and_lets_others_pass(r: redis.Redis) -> None:
    limits.set_limits(R, {"group_concurrency": 1})
    a = enqueue_many(R, "t-work", [{"n": i} for i in range(3)], group="a")
    b = enqueue(R, "t-work", {"n": 9}, group="b")
    loose = enqueue(R, "t-work", {"n": 10})  # no group: group limits do not apply
    assert in_broker(r) == 3 and held(r) == 2
    assert get_job(R, a[1].id).state == "concurrency_limited"
    started = {start(r)[0] for _ in range(3)}
    assert started == {a[0].id, b.id, loose.id}
    finish(a[0].id)
    assert start(r)[0] == a[1].id


def test_a_group_rate_limit_holds_only_that_group(r: redis.Redis) -> None:
    limits.set_limits(R, {"group_rate_limit": {"max": 1, "duration_ms": 60000}})
    a = enqueue_many(R, "t-work", [{"n": i} for i in range(2)], group="a")
    b = enqueue(R, "t-work", {"n": 9}, group="b")
    assert {start(r)[0] for _ in range(2)} == {a[0].id, b.id}
    assert in_broker(r) == 0
    assert get_job(R, a[1].id).state == "rate_limited"


def test_held_jobs_go_out_by_priority_then_in_order(r: redis.Redis) -> None:
    limits.set_limits(R, {"concurrency": 1})
    first = enqueue(R, "t-work", {"n": 0})
    low = enqueue_many(R, "t-work", [{"n": i} for i in range(2)], priority=5)
    high = enqueue(R, "t-work", {"n": 3}, priority=1)
    change_priority(R, low[1].id, 0)  # a held job takes its new place
    assert run_in_turn(r, 4) == [first.id, low[1].id, high.id, low[0].id]


def test_a_due_delayed_job_and_a_retry_are_held_too(r: redis.Redis) -> None:
    limits.set_limits(R, {"concurrency": 1})
    running = enqueue(R, "t-work", {"n": 0})
    later = enqueue(R, "t-work", {"n": 1}, delay_ms=1)
    r.zadd(keys.state_index(R, "delayed"), {later.id: 0})  # due now
    store.promote(R)
    assert get_job(R, later.id).state == "concurrency_limited"
    job_id, _ = start(r)
    assert job_id == running.id
    finish(job_id)
    assert start(r)[0] == later.id


def test_cancelling_a_held_job_takes_it_out_of_the_gate(r: redis.Redis) -> None:
    limits.set_limits(R, {"concurrency": 1})
    enqueue(R, "t-work", {"n": 0})
    lone = enqueue(R, "t-work", {"n": 1}, group="lone")
    assert cancel_job(R, lone.id) == "cancelled"
    assert get_job(R, lone.id).state == "cancelled"
    assert held(r) == 0
    assert r.lrange(keys.gate(R, "ring"), 0, -1) == []


def test_turning_every_limit_off_lets_every_held_job_out(r: redis.Redis) -> None:
    limits.set_limits(R, {"concurrency": 1})
    enqueue_many(R, "t-work", [{"n": i} for i in range(4)], group="g")
    limits.set_limits(R, {})
    assert gate.has_held(R)  # the gate stays open until it is empty
    assert gate.pump(R) == (3, -1)
    assert in_broker(r) == 4 and held(r) == 0
    assert not gate.has_held(R)
    enqueue(R, "t-work", {"n": 9})
    assert in_broker(r) == 5 and held(r) == 0  # straight to the broker again


def test_a_pause_holds_the_gate(r: redis.Redis) -> None:
    from queues.ops import manager

    limits.set_limits(R, {"concurrency": 5})
    manager.pause_queue(R)
    enqueue_many(R, "t-work", [{"n": i} for i in range(2)])
    assert gate.pump(R) == (0, -1) and in_broker(r) == 0
    manager.resume_queue(R)
    assert gate.pump(R)[0] == 2


def test_invalid_limits_are_refused_and_change_nothing() -> None:
    limits.set_limits(R, {"concurrency": 2})
    for bad in ({"concurrency": 0}, {"rate_limit": {"max": 5}}, {"speed": 3},
                {"rate_limit": {"max": 1, "duration_ms": -1}}, {"concurrency": "many"}):
        with pytest.raises(ConfigurationError, match="invalid limits"):
            limits.set_limits(R, bad)
    assert limits.limits_of(R) == limits.QueueLimits(concurrency=2)
    assert gate.read_limits(R) == gate.Limits(concurrency=2)
    with pytest.raises(QueueTypeNotFound):
        limits.set_limits("no-such-queue", {"concurrency": 1})


def test_limits_change_over_the_api_and_the_cli_and_each_change_is_audited(client: Any) -> None:
    body = {"rate_limit": {"max": 10, "duration_ms": 1000}, "group_concurrency": 2}
    resp = client.put(f"/queues/{R}/limits", body, content_type="application/json",
                      headers=bearer("queues:manage"))
    assert resp.status_code == 200, resp.content
    assert resp.json()["rate_limit"] == {"max": 10, "duration_ms": 1000}
    assert gate.read_limits(R) == gate.Limits(rate_max=10, rate_ms=1000, group_concurrency=2)
    assert client.get(f"/queues/{R}/limits", headers=bearer("queues:view")).json() == {
        "rate_limit": {"max": 10, "duration_ms": 1000}, "concurrency": None,
        "group_concurrency": 2, "group_rate_limit": None}
    refused = client.put(f"/queues/{R}/limits", {"concurrency": -1},
                         content_type="application/json", headers=bearer("queues:manage"))
    assert refused.status_code == 422 and "concurrency" in refused.content.decode()
    forbidden = client.put(f"/queues/{R}/limits", {"concurrency": 1},
                           content_type="application/json", headers=bearer("queues:view"))
    assert forbidden.status_code == 403
    call_command("jobqueue", "limits", R, "--set", '{"concurrency": 4}')
    assert gate.read_limits(R) == gate.Limits(concurrency=4)
    events = list(AuditEvent.objects.filter(action="set_limits", queue=R).order_by("id"))
    assert len(events) == 2
    assert events[0].actor == "client:test-client"
    assert events[1].details["limits"]["concurrency"] == 4
    assert events[1].details["previous"]["group_concurrency"] == 2


def test_the_admin_form_sets_the_live_limits(r: redis.Redis) -> None:
    from django.forms.models import model_to_dict

    from queues.models import QueueType
    from tests.conftest import staff_client

    admin = staff_client("queues", "change_queuetype", "view_queuetype")
    row = QueueType.objects.get(name=R)
    form = {k: ("" if v is None else json.dumps(v) if isinstance(v, list | bool | dict) else v)
            for k, v in model_to_dict(row).items()}
    form.update(global_concurrency=3, rate_limit_max=5, rate_limit_duration_ms="")
    refused = admin.post(f"/admin/queues/queuetype/{row.pk}/change/", form)
    assert refused.status_code == 200 and b"needs both a count and a duration" in refused.content
    assert gate.read_limits(R) == gate.Limits()
    form.update(rate_limit_duration_ms=1000)
    assert admin.post(f"/admin/queues/queuetype/{row.pk}/change/", form).status_code == 302
    assert gate.read_limits(R) == gate.Limits(rate_max=5, rate_ms=1000, concurrency=3)
    assert AuditEvent.objects.filter(action="set_limits", queue=R).count() == 1


def test_held_jobs_show_in_the_metrics_by_reason(r: redis.Redis) -> None:
    limits.set_limits(R, {"concurrency": 1})
    enqueue_many(R, "t-work", [{"n": i} for i in range(3)])
    assert gate.held_by_reason(R) == {"concurrency_limited": 2, "rate_limited": 0}
    text = render().decode()
    assert f'queue_jobs_limited{{queue="{R}",reason="concurrency_limited"}} 2.0' in text


def test_the_dashboard_shows_held_jobs_on_their_tab_and_names_the_limit(r: redis.Redis) -> None:
    from django.urls import reverse

    from tests.conftest import staff_client

    limits.set_limits(R, {"concurrency": 1})
    enqueue(R, "t-work", {"n": 0})
    held_job = enqueue(R, "t-work", {"n": 1}, group="tenant-7")
    operator = staff_client("queues", "view_dashboard", "manage_jobs")
    tab = operator.get(reverse("dashboard-queue", args=[R]), {"state": "limited"})
    assert tab.status_code == 200
    assert held_job.id.encode() in tab.content
    page = operator.get(reverse("dashboard-job", args=[R, held_job.id]))
    assert page.status_code == 200
    assert b'id="jq-job-state">concurrency_limited<' in page.content
    assert b"?state=limited" in page.content  # its tab, not a state no tab has
    assert b"Cancel" in page.content  # the held tab's actions are offered
