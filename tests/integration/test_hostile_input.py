"""Hostile input at every door (issue 9): each test sends exactly one bad input and
checks the clear error and that nothing was recorded.

HTTP through Django's test client (strict bodies, 415, 413, JSON 404/405/400,
job id charset, spoofed client ids); Python through ``enqueue``, ``.delay()``
and the adoption of a message sent around the coordinator.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from celery import Task
from django.conf import settings
from django.test import Client, override_settings

from coordinator_project.celery import app
from queues.exceptions import JobNotFound, JobValidationError
from queues.jobs import enqueue, enqueue_many, get_job
from queues.jobs.payload import MAX_PAYLOAD_DEPTH
from queues.store import keys
from tests import fixtures_tasks as t
from tests.conftest import bearer, texts, wait_for

pytestmark = pytest.mark.django_db
Q = t.QUEUE
JOBS = f"/queues/{Q}/jobs"


def token() -> dict[str, str]:
    return bearer("queues:view", "queues:enqueue", "queues:manage")


def send(raw: str | bytes, *, content_type: str | None = "application/json",
         headers: dict[str, str] | None = None, path: str = JOBS) -> Any:
    # content_type None: the request has no Content-Type header at all.
    return Client().generic("POST", path, raw, content_type=content_type or "",
                            headers=headers or token())


def post(body: Any, **kwargs: Any) -> Any:
    return send(json.dumps(body), **kwargs)


def nest(levels: int) -> dict[str, Any]:
    """An object ``levels`` deep: ``nest(1) == {"v": 0}``."""
    value: Any = 0
    for _ in range(levels):
        value = {"v": value}
    return value


def assert_error(response: Any, status: int, error: str | None = None,
                 field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response.content
    body = response.json()
    if error is not None:
        assert body["error"] == error, body
    if field is not None:
        assert body["field"] == field, body
    return body


def assert_nothing_recorded(r: redis.Redis, job_id: str | None = None) -> None:
    assert r.keys(keys.job(Q, "*")) == []
    assert r.llen(Q) == 0 and r.zcard(keys.state_index(Q, "waiting")) == 0
    if job_id is not None:
        with pytest.raises(JobNotFound):
            get_job(Q, job_id)


# ----- HTTP: strict JSON bodies -------------------------------------------------------
@pytest.mark.parametrize("raw", [
    '{"name": "t-sleep", "data": {"a": 1, "a": 2}}',
    '{"name": "t-sleep", "name": "t-echo", "data": {}}',
    '{"name": "t-sleep", "data": {"x": NaN}}',
    '{"name": "t-sleep", "data": {"x": [1, Infinity]}}',
    '{"name": "t-sleep", "data": {}, "options": {"priority": -Infinity}}',
    '{"name": "t-sleep", "data": {"x": 1e400}}',
    '{"name": "t-sleep", "data": {"x": ' + "9" * 5000 + "}}",
    '{"name": "t-sleep", "data": {"x": 1}',
    "{not json",
    b'{"name": "t-sleep", "data": {"x": "\xff"}}',
], ids=["dup-in-data", "dup-top", "nan", "infinity", "-infinity", "1e400", "huge-int",
        "truncated", "garbage", "bad-utf8"])
def test_malformed_bodies_get_400_json(r: redis.Redis, raw: str | bytes) -> None:
    body = assert_error(send(raw), 400, "MalformedJSON")
    assert body["detail"].startswith("malformed JSON body")
    assert_nothing_recorded(r)


def test_the_duplicate_key_is_named(r: redis.Redis) -> None:
    body = assert_error(send('{"name": "t-sleep", "data": {"photo": 1, "photo": 2}}'), 400)
    assert "duplicate key 'photo'" in body["detail"]


@pytest.mark.parametrize(("raw", "field"), [
    ('{"name": "t-sleep", "data": {"x": "a\\u0000b"}}', "data.x"),
    ('{"name": "t-sleep", "data": {"a\\u0000": 1}}', "data.a\\x00"),
    ('{"name": "t-sleep", "data": {"x": ["ok", "\\ud800"]}}', "data.x.1"),
    ('{"name": "t-sleep", "data": {"\\udfff": 1}}', "data.\\udfff"),
    ('{"name": "t-sleep", "data": {}, "options": {"trace_id": "a\\u0000"}}', "trace_id"),
])
def test_strings_postgresql_cannot_store_get_422(r: redis.Redis, raw: str, field: str) -> None:
    assert_error(send(raw), 422, "JobValidationError", field)
    assert_nothing_recorded(r)


def test_a_queue_config_postgresql_cannot_store_gets_422(r: redis.Redis) -> None:
    from queues.models import QueueType

    made = send('{"name": "nul-queue", "config": {"display_name": "a\\u0000"}}',
                path="/queues")
    assert_error(made, 422, "JobValidationError", "config.display_name")
    assert not QueueType.objects.filter(name="nul-queue").exists()


def test_a_surrogate_pair_is_an_ordinary_character(r: redis.Redis) -> None:
    made = send('{"name": "t-sleep", "data": {"x": "\\ud83d\\ude00"}}')
    assert made.status_code == 201, made.content
    assert get_job(Q, made.json()["id"]).data == {"x": "\U0001F600"}


def test_nesting_is_limited_and_the_limit_named(r: redis.Redis) -> None:
    deep = assert_error(post({"name": "t-sleep", "data": nest(MAX_PAYLOAD_DEPTH + 1)}), 422,
                        "JobValidationError", "data" + ".v" * MAX_PAYLOAD_DEPTH)
    assert f"{MAX_PAYLOAD_DEPTH} levels" in deep["detail"]
    very_deep = '{"name": "t-sleep", "data": ' + '{"v": ' * 5000 + "0" + "}" * 5001
    assert f"{MAX_PAYLOAD_DEPTH} levels" in assert_error(send(very_deep), 422)["detail"]
    assert_nothing_recorded(r)
    assert post({"name": "t-sleep", "data": nest(MAX_PAYLOAD_DEPTH)}).status_code == 201


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", None, "application/json; charset=latin-1",
])
def test_a_body_that_is_not_json_gets_415(r: redis.Redis, content_type: str | None) -> None:
    response = send('{"name": "t-sleep", "data": {}}', content_type=content_type)
    assert "application/json" in assert_error(response, 415, "UnsupportedMediaType")["detail"]
    assert_nothing_recorded(r)
    assert send('{"name": "t-sleep", "data": {}}',
                content_type="application/json; charset=utf-8").status_code == 201


def test_bodies_over_the_limits_get_413_json(r: redis.Redis,
                                             caplog: pytest.LogCaptureFixture) -> None:
    limit = settings.COORDINATOR_MAX_JOB_DATA_SIZE
    assert limit < settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # headroom for the envelope
    at_limit = post({"name": "t-sleep", "data": {"blob": "x" * limit}})
    assert_error(at_limit, 413, "PayloadTooLarge", "data")
    huge = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    body = assert_error(post({"name": "t-sleep", "data": {"blob": huge}}), 413,
                        "RequestTooLarge")
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in body["detail"]
    assert not [rec for rec in caplog.records if rec.exc_info]  # no traceback logged
    assert_nothing_recorded(r)


# ----- HTTP: what Django answers outside the views ------------------------------------
@pytest.mark.parametrize("path", [f"/queues/{Q}/nope", "/nope", "/queues/", "/queues/a/b/c/d"])
def test_unknown_paths_get_404_json(path: str) -> None:
    body = assert_error(Client().get(path, headers=token()), 404, "NotFound")
    assert path in body["detail"]


def test_admin_keeps_its_html_404() -> None:
    response = Client().get("/admin/nope/")
    assert response.status_code in (302, 404)  # login redirect or Django's page
    assert not response["Content-Type"].startswith("application/json")


@override_settings(ALLOWED_HOSTS=["testserver"])
def test_a_host_not_allowed_gets_400_json_naming_it() -> None:
    body = assert_error(Client().get(f"/queues/{Q}/status", headers=token(),
                                     HTTP_HOST="evil.example"), 400, "DisallowedHost")
    assert "evil.example" in body["detail"]
    assert Client().get("/admin/login/", HTTP_HOST="evil.example").status_code == 400


@pytest.mark.parametrize(("method", "path"), [("put", "/queues"), ("patch", JOBS),
                                              ("post", f"/queues/{Q}/status")])
def test_a_wrong_method_gets_405_json(method: str, path: str) -> None:
    response = getattr(Client(), method)(path, headers=token())
    body = assert_error(response, 405, "MethodNotAllowed")
    assert response["Allow"] and response["Allow"] in body["detail"]


# ----- HTTP: job ids and client ids ---------------------------------------------------
@pytest.mark.parametrize("job_id", [
    "../x", "a/b", "a\x00b", "a\tb", "a\nb", "a b", "x" * 201, "", "é", "a\n", "a+b",
], ids=["dotdot", "slash", "nul", "tab", "newline", "space", "201", "empty", "non-ascii",
        "trailing-newline", "plus"])
def test_job_ids_outside_the_charset_get_422(r: redis.Redis, job_id: str) -> None:
    response = post({"name": "t-sleep", "data": {}, "options": {"job_id": job_id}})
    assert_error(response, 422, "JobValidationError", "job_id")
    assert_nothing_recorded(r)


def test_the_longest_and_widest_job_id_is_accepted(r: redis.Redis) -> None:
    job_id = "Az09._:-" * 25
    assert len(job_id) == 200
    made = post({"name": "t-sleep", "data": {}, "options": {"job_id": job_id}})
    assert made.status_code == 201
    assert Client().get(f"{JOBS}/{job_id}", headers=token()).json()["id"] == job_id


@pytest.mark.parametrize(("option", "value"), [
    ("trace_id", "a b"), ("trace_id", "t" * 129), ("trace_id", "\x7f"), ("trace_id", ""),
])
def test_trace_ids_are_bounded(r: redis.Redis, option: str, value: str) -> None:
    response = post({"name": "t-sleep", "data": {}, "options": {option: value}})
    assert_error(response, 422, "JobValidationError", option)
    assert_nothing_recorded(r)


@override_settings(COORDINATOR_ENABLE_RATE_LIMITING=True, COORDINATOR_MAX_JOBS_PER_MINUTE=2)
def test_spoofed_client_ids_cannot_escape_the_rate_limit(r: redis.Redis) -> None:
    wait_for(lambda: time.time() % 60 < 50, timeout=15)  # all six in one clock minute
    token = bearer("queues:enqueue", sub="tenant-3")
    statuses = [post({"name": "t-sleep", "data": {"n": n},
                      "options": {"client_id": f"made-up-{n}"}}, headers=token).status_code
                for n in range(6)]
    assert statuses == [201, 201, 429, 429, 429, 429]
    recorded = texts(r.zrange(keys.state_index(Q, "waiting"), 0, -1))
    assert len(recorded) == 2
    assert {get_job(Q, job_id).client_id for job_id in recorded} == {"tenant-3"}


def test_openapi_says_the_token_sub_is_the_client_id() -> None:
    doc = Client().get("/openapi.json").json()
    text = json.dumps(doc["paths"]["/queues/{name}/jobs"]) + json.dumps(doc["components"])
    assert "token's sub" in text


@pytest.mark.django_db(transaction=True)
def test_the_job_sees_the_tokens_sub_as_ctx_client_id(r: redis.Redis,
                                                      inprocess_worker: Any) -> None:
    made = post({"name": "t-client", "data": {}, "options": {"client_id": "spoof"}},
                headers=bearer("queues:enqueue", "queues:manage", sub="tenant-7"))
    job_id = made.json()["id"]
    [message] = [json.loads(raw) for raw in r.lrange(Q, 0, -1)]
    assert message["headers"]["jq_client"] == "tenant-7"
    # A new priority rebuilds the message from the record: the client id must survive.
    moved = Client().post(f"{JOBS}/{job_id}/priority", json.dumps({"priority": 3}),
                          content_type="application/json", headers=bearer(sub="tenant-7"))
    assert moved.status_code == 200
    inprocess_worker()
    info = wait_for(lambda: (i := get_job(Q, job_id)).state == "completed" and i)
    assert (info.result, info.client_id) == ("tenant-7", "tenant-7")


# ----- Python: enqueue, .delay(), adoption --------------------------------------------
def cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["again"] = loop
    return loop


@pytest.mark.parametrize(("call", "field"), [
    (lambda: enqueue(Q, "t-sleep", {"x": float("nan")}), "data.x"),
    (lambda: enqueue(Q, "t-sleep", {"x": [1.0, float("inf")]}), "data.x.1"),
    (lambda: t.sleep_job.delay(x={"y": -float("inf")}), "data.x.y"),
    (lambda: t.measure.delay(x=float("nan")), "data.x"),
    (lambda: t.measure.delay(x="inf"), "data.x"),
    (lambda: t.measure.delay(x=1.0, label="a\x00"), "data.label"),
    (lambda: t.sleep_job.delay({"s": "\ud800"}), "data.s"),
    (lambda: t.sleep_job.delay({"k\x00": 1}), "data.k\\x00"),
    (lambda: t.sleep_job.delay({"\udc00": 1}), "data.\\udc00"),
    (lambda: t.sleep_job.delay({"m": {1: "int key"}}), "data.m"),
    (lambda: t.sleep_job.delay({"n": 10 ** 5000}), "data"),
    (lambda: enqueue(Q, "t-sleep", nest(MAX_PAYLOAD_DEPTH + 1)), "data" + ".v" * 32),
    (lambda: enqueue(Q, "t-sleep", {"loop": cyclic()}), None),
    (lambda: enqueue_many(Q, "t-sleep", [{"ok": 1}, {"ok": float("nan")}]), "data.ok"),
    (lambda: enqueue(Q, "t-sleep", {}, job_id="../etc"), "job_id"),
    (lambda: t.sleep_job.apply_async(({},), task_id="a b"), "job_id"),
    (lambda: enqueue(Q, "t-sleep", {}, client_id="tenant 7"), "client_id"),
    (lambda: enqueue(Q, "t-sleep", {}, trace_id="x" * 129), "trace_id"),
], ids=["nan", "inf-in-list", "-inf-delay", "nan-after-schema", "inf-string-schema",
        "nul-after-schema", "lone-surrogate", "nul-key", "surrogate-key", "int-key",
        "huge-int", "depth", "cycle", "enqueue-many", "job-id", "task-id", "client-id",
        "trace-id"])
def test_python_doors_refuse_what_strict_json_refuses(r: redis.Redis, call: Any,
                                                      field: str | None) -> None:
    with pytest.raises(JobValidationError) as refused:
        call()
    if field is not None:
        assert refused.value.field == field
    assert_nothing_recorded(r)


def test_the_depth_limit_is_named_and_inclusive(r: redis.Redis) -> None:
    with pytest.raises(JobValidationError, match=f"more than {MAX_PAYLOAD_DEPTH} levels"):
        t.sleep_job.delay(nest(MAX_PAYLOAD_DEPTH + 1))
    assert get_job(Q, t.sleep_job.delay(nest(MAX_PAYLOAD_DEPTH)).id).state == "waiting"


@pytest.mark.django_db(transaction=True)
def test_an_untracked_message_breaking_the_rules_is_dropped(
        r: redis.Redis, inprocess_worker: Any, caplog: pytest.LogCaptureFixture) -> None:
    raw = app.tasks[t.sleep_job.name]
    Task.apply_async(raw, args=({"x": float("nan")},), task_id="raw-nan")
    Task.apply_async(raw, args=({},), task_id="raw bad id")
    Task.apply_async(raw, args=({"ms": 0},), task_id="raw-ok")
    inprocess_worker()
    # One solo worker takes them in order: once raw-ok ran, the two before it were seen.
    wait_for(lambda: (i := _maybe_job("raw-ok")) is not None and i.state == "completed")
    for job_id in ("raw-nan", "raw bad id"):
        with pytest.raises(JobNotFound):
            get_job(Q, job_id)
    refused = [rec.getMessage() for rec in caplog.records if "refused" in rec.getMessage()]
    assert any("raw-nan" in m and "data.x" in m for m in refused), refused
    assert any("raw bad id" in m and "job_id" in m for m in refused), refused


def _maybe_job(job_id: str) -> Any:
    try:
        return get_job(Q, job_id)
    except JobNotFound:
        return None


@pytest.mark.parametrize("key", ["name", "queue", "data", "on_commit", "start_date", "actor"])
@pytest.mark.parametrize("path", [JOBS, f"/queues/{Q}/recurring"], ids=["enqueue", "recurring"])
def test_an_option_named_like_a_parameter_gets_422_and_records_nothing(
        r: redis.Redis, key: str, path: str) -> None:
    """Options become keyword arguments of the service: one named like a parameter of it
    must be refused as an option, never reach it as that parameter (a 500 before)."""
    from django_celery_beat.models import PeriodicTask

    body = {"name": "t-sleep", "data": {}, "cron": "*/5 * * * *", "options": {key: "x"}}
    assert_error(post(body, path=path), 422, "JobValidationError", key)
    assert_nothing_recorded(r)
    assert not PeriodicTask.objects.filter(name__startswith="recurring:").exists()
