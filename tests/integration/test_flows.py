"""Parent-child flows in the scripts: recording, settling each child, letting the parent out.

The test plays the worker (``tests.integration.worker_steps``), so each transition runs
on a real Redis without a worker's timing in the way.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.test import Client

from queues import store
from queues.exceptions import InvalidJobState, JobValidationError, QueueTypeNotFound
from queues.jobs import cancel_job, get_job
from queues.jobs.context import JobContext
from queues.jobs.flows import FlowJob, cancel_flow, enqueue_flow, get_flow
from queues.ops import limits
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import bearer
from tests.integration.worker_steps import finish, pop, start

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("resilience_queue_of_30s")]
R = t.RESILIENCE


def work(n: int, **kw: Any) -> FlowJob:
    return FlowJob(R, "t-work", {"n": n}, **kw)


def fail(job_id: str, error: str = "boom") -> dict[str, str] | None:
    return store.fail(R, job_id, token=f"tok-{job_id}", worker="w@test",
                      fields={"error_type": "ValueError", "error": error, "traceback": ""})


def test_the_parent_runs_once_after_its_last_child_and_reads_their_results(
        r: redis.Redis) -> None:
    flow = enqueue_flow(work(0), [work(1), work(2), work(3)])
    parent = flow.job.id
    assert get_job(R, parent).state == "waiting-children"
    assert [c.job.id for c in flow.children] == [start(r)[0] for _ in range(3)]
    for n, child in enumerate(flow.children):
        assert store.complete(R, child.job.id, token=f"tok-{child.job.id}", worker="w@test",
                              result=str(n * 10))
        assert get_job(R, parent).state == ("waiting" if n == 2 else "waiting-children")
    assert pop(r) == (parent, 1) and pop(r) is None  # one message for the parent, once
    ctx = JobContext(parent, R, "t-work")
    assert ctx.children_results() == {c.job.id: n * 10 for n, c in enumerate(flow.children)}
    assert ctx.children_failures() == {}


def test_a_failed_child_fails_its_parent_and_the_parent_is_dead_lettered(
        r: redis.Redis) -> None:
    from deadletter.models import DeadLetter

    flow = enqueue_flow(work(0), [work(1), work(2)])
    first, _ = start(r)
    final = fail(first)
    assert final is not None and "flow_failed" in final
    from queues.jobs.failures import failed_for_good

    failed_for_good(R, first, final, how="finished")
    parent = get_job(R, flow.job.id)
    assert parent.state == "failed" and parent.failed_reason == "child_failed"
    assert parent.error == f"child {R}/{first} failed: ValueError: boom"
    rows = {row.job_id: row for row in DeadLetter.objects.all()}
    assert set(rows) == {first, flow.job.id}
    assert rows[flow.job.id].reason == DeadLetter.Reason.CHILD_FAILED
    assert rows[flow.job.id].error_type == "ChildFailed"
    # the other child runs on; its end no longer reaches the failed parent
    second, _ = start(r)
    finish(second)
    assert get_job(R, flow.job.id).state == "failed" and pop(r) is None


def test_ignore_lets_the_parent_run_and_see_the_failure_and_remove_drops_the_child(
        r: redis.Redis) -> None:
    flow = enqueue_flow(work(0), [work(1, on_failure="ignore"), work(2, on_failure="remove"),
                                  work(3)])
    ignored, removed, kept = (c.job.id for c in flow.children)
    for job_id in (start(r)[0] for _ in range(3)):
        if job_id == kept:
            finish(job_id)
        else:
            fail(job_id, error=f"{job_id} broke")
    assert get_job(R, flow.job.id).state == "waiting"
    ctx = JobContext(flow.job.id, R, "t-work")
    assert ctx.children_results() == {kept: 1}
    assert ctx.children_failures() == {
        ignored: {"state": "failed", "error_type": "ValueError", "error": f"{ignored} broke"}}
    assert removed not in ctx.children_failures()


def test_nested_flows_across_queues_release_level_by_level(r: redis.Redis) -> None:
    t_queue = t.QUEUE  # photo-processing: the fixture jobs' other queue
    flow = enqueue_flow(FlowJob(R, "t-work", {"n": 0}, children=[
        FlowJob(R, "t-work", {"n": 1}, children=[work(2), work(3)]),
        FlowJob(t_queue, "t-echo", {"value": 4}),
    ]))
    middle, echo = flow.children
    assert get_job(R, middle.job.id).state == "waiting-children"
    assert get_job(t_queue, echo.job.id).state == "waiting"
    leaves = [start(r)[0] for _ in range(2)]
    assert leaves == [c.job.id for c in middle.children]
    for leaf in leaves:
        finish(leaf)
    assert start(r)[0] == middle.job.id  # the middle parent runs
    finish(middle.job.id)
    assert get_job(R, flow.job.id).state == "waiting-children"  # still the echo job
    tree = get_flow(R, flow.job.id)
    assert tree.pending == 1
    assert [(n.job.id, n.job.state, n.on_failure) for n in tree.children] == [
        (middle.job.id, "completed", "fail_parent"), (echo.job.id, "waiting", "fail_parent")]
    assert [n.job.state for n in tree.children[0].children] == ["completed", "completed"]


def test_cancelling_a_flow_cancels_the_parent_and_every_child_not_ended(
        r: redis.Redis) -> None:
    flow = enqueue_flow(work(0), [work(n) for n in range(1, 5)])
    running, _ = start(r)
    done, _ = start(r)
    finish(done)
    assert cancel_flow(R, flow.job.id) == 4  # the parent, two waiting, one running (flagged)
    assert get_job(R, flow.job.id).state == "cancelled"
    states = {c.job.id: get_job(R, c.job.id).state for c in flow.children}
    assert states[done] == "completed" and states[running] == "active"
    assert sorted(states.values()) == ["active", "cancelled", "cancelled", "completed"]
    assert store.fields(R, running, "cancel_requested") == ["1"]
    finish(running)
    left = []  # the cancelled children's messages (no-ops at claim), nothing for the parent
    while (message := pop(r)) is not None:
        left.append(message[0])
    assert flow.job.id not in left and get_job(R, flow.job.id).state == "cancelled"


def test_cancelling_one_child_fails_its_parent_unless_it_is_ignored(r: redis.Redis) -> None:
    strict = enqueue_flow(work(0), [work(1)])
    cancel_job(R, strict.children[0].job.id)
    parent = get_job(R, strict.job.id)
    assert parent.state == "failed" and "cancelled" in (parent.error or "")
    lenient = enqueue_flow(work(2), [work(3, on_failure="ignore")])
    cancel_job(R, lenient.children[0].job.id)
    assert get_job(R, lenient.job.id).state == "waiting"


def test_a_parent_on_a_queue_with_limits_is_held_when_released(r: redis.Redis) -> None:
    limits.set_limits(R, {"concurrency": 1})
    flow = enqueue_flow(work(0), [work(1), work(2)])
    for _ in range(2):
        job_id, _claim = start(r)
        finish(job_id)
    # released into the gate, which let it out at once: nothing else runs
    assert start(r)[0] == flow.job.id


def test_a_flow_is_recorded_whole_or_not_at_all(r: redis.Redis) -> None:
    taken = enqueue_flow(work(9, options={"job_id": "taken"})).job.id
    known = int(r.dbsize())
    with pytest.raises(InvalidJobState, match="taken"):
        enqueue_flow(work(0), [work(1), work(2, options={"job_id": taken})])
    assert int(r.dbsize()) == known
    for bad, match in [
        ((work(0, options={"delay_ms": 100}), [work(1)]), "delay_ms cannot be given to a parent"),
        ((work(0), [work(1, options={"dedup": {"key": "k", "ttl_ms": 10}})]), "dedup"),
        ((work(0), [FlowJob(t.QUEUE, "t-echo", {"value": "many"})]), "t-echo of the flow"),
        ((work(0), [work(1, options={"job_id": "twice"}), work(2, options={"job_id": "twice"})]),
         "appears twice"),
        ((work(0), [work(1, on_failure="shrug")]), "on_failure"),
    ]:
        with pytest.raises(JobValidationError, match=match):
            enqueue_flow(*bad)
    with pytest.raises(QueueTypeNotFound):
        enqueue_flow(work(0), [FlowJob("no-such-queue", "t-work")])
    deep = work(17)
    for n in range(16, 0, -1):
        deep = work(n, children=[deep])
    with pytest.raises(JobValidationError, match="at most 16 levels deep"):
        enqueue_flow(deep)
    with pytest.raises(JobValidationError, match="at most 10000 jobs, not 10001"):
        enqueue_flow(work(0), [work(n) for n in range(10_000)])
    with pytest.raises(JobValidationError, match="a flow is made of FlowJob"):
        enqueue_flow(work(0), [{"queue": R, "name": "t-work"}])  # type: ignore[list-item]
    assert int(r.dbsize()) == known


def test_a_flow_over_http(client: Client) -> None:
    body = {"name": "t-work", "data": {"n": 0}, "children": [
        {"queue": R, "name": "t-work", "data": {"n": 1}, "on_failure": "ignore"},
        {"queue": R, "name": "t-work", "data": {"n": 2}, "children": [
            {"queue": R, "name": "t-work", "data": {"n": 3}}]}]}
    headers = bearer("queues:enqueue", "queues:view")
    resp = client.post(f"/queues/{R}/flows", body, content_type="application/json",
                       headers=headers)
    assert resp.status_code == 201, resp.content
    made = resp.json()
    assert len(made["children"]) == 2 and len(made["children"][1]["children"]) == 1
    tree = client.get(f"/queues/{R}/jobs/{made['id']}/flow", headers=headers).json()
    assert tree["state"] == "waiting-children" and tree["pending"] == 2
    assert [c["on_failure"] for c in tree["children"]] == ["ignore", "fail_parent"]
    assert tree["children"][1]["state"] == "waiting-children"
    bad = client.post(f"/queues/{R}/flows", {**body, "children": [{"queue": R}]},
                      content_type="application/json", headers=headers)
    assert bad.status_code == 422
    assert client.get(f"/queues/{R}/jobs/nope/flow", headers=headers).status_code == 404


def test_a_parent_record_and_its_flow_keys_go_with_retention(r: redis.Redis) -> None:
    flow = enqueue_flow(FlowJob(R, "t-work", {"n": 0}, options={"remove_on_complete": True}),
                        [work(1)])
    child, _ = start(r)
    finish(child)
    parent, _ = start(r)
    assert r.exists(f"{keys.job(R, parent)}:results")
    finish(parent)
    assert not r.exists(keys.job(R, parent), f"{keys.job(R, parent)}:results",
                        f"{keys.job(R, parent)}:children")
    assert parent == flow.job.id


def test_the_job_page_shows_the_flow_as_a_tree(r: redis.Redis) -> None:
    from django.urls import reverse

    from tests.conftest import staff_client

    flow = enqueue_flow(work(0), [work(1, children=[work(2)]), work(3, on_failure="ignore")])
    operator = staff_client("queues", "view_dashboard")
    page = operator.get(reverse("dashboard-job", args=[R, flow.job.id])).content.decode()
    assert 'id="jq-job-state">waiting-children<' in page
    assert "2 children, 2 not ended yet" in page
    for child in (*flow.children, *flow.children[0].children):
        assert reverse("dashboard-job", args=[R, child.job.id]) in page
    assert "(on failure: ignore)" in page
    leaf = flow.children[0].children[0].job.id
    leaf_page = operator.get(reverse("dashboard-job", args=[R, leaf])).content.decode()
    assert f"A child of <a href=\"{reverse('dashboard-job', args=[R, flow.children[0].job.id])}\"" \
        in leaf_page
