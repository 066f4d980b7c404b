"""The ops HTTP API through Django's test client: auth, the seed's paths, JSON errors."""

from __future__ import annotations

import json
import time
from io import StringIO
from typing import Any

import jwt
import pytest
import redis
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from deadletter.models import AuditEvent, DeadLetter
from queues.http import auth
from tests.integration.test_deadletter_services import Q, record

pytestmark = [pytest.mark.django_db,
              pytest.mark.usefixtures("jwt_secret")]
SECRET = "another-test-secret-for-the-api-tests-only"


@pytest.fixture
def jwt_secret() -> Any:
    with override_settings(COORDINATOR_JWT_SECRET=SECRET):
        yield


def token(*scopes: str, sub: str = "ops-bot", **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": sub, "scope": " ".join(scopes), "iat": now, "nbf": now, "exp": now + 600,
            "iss": "job-queue-coordinator", "aud": "job-queue-coordinator-api", **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def call(method: str, path: str, tok: str | None = None, body: Any = None,
         raw: str | None = None) -> Any:
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {tok}"} if tok else {}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    kwargs = {"data": data, "content_type": "application/json"} if data is not None else {}
    return getattr(client, method)(path, **kwargs, **headers)


MANAGE = token("queues:manage", "queues:enqueue")


@pytest.mark.parametrize("bad", [
    None,
    token("queues:view", exp=int(time.time()) - 10),
    jwt.encode({"sub": "x", "scope": "queues:view"}, "another-secret-of-sufficient-length",
               algorithm="HS256"),
    jwt.encode({"sub": "x", "scope": "queues:view", "iss": "job-queue-coordinator",
                "aud": "job-queue-coordinator-api", "exp": int(time.time()) + 60}, "",
               algorithm="none"),  # PyJWT's "none" takes "" as the key None
    token("queues:view", aud="someone-else"),
    token("queues:view", nbf=int(time.time()) + 600),
    "not.a.jwt",
])
def test_bad_tokens_get_401(bad: str | None) -> None:
    response = call("get", f"/queues/{Q}/status", bad)
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_scopes_map_to_view_enqueue_manage_per_queue(r: redis.Redis) -> None:
    viewer = token("queues:view")
    assert call("get", f"/queues/{Q}/status", viewer).status_code == 200
    denied = call("post", f"/queues/{Q}/pause", viewer)
    assert denied.status_code == 403 and "queues:manage" in denied.json()["detail"]
    only_batch = token("queues:manage:batch-processing")
    assert call("post", "/queues/batch-processing/pause", only_batch).status_code == 200
    assert call("post", f"/queues/{Q}/pause", only_batch).status_code == 403
    assert call("get", "/queues", only_batch).json() == {"queues": ["batch-processing"]}
    assert call("post", f"/queues/{Q}/jobs", viewer,
                {"name": "t-echo", "data": {"value": 1}}).status_code == 403


def test_enqueue_get_cancel_and_priority(r: redis.Redis) -> None:
    made = call("post", f"/queues/{Q}/jobs", MANAGE,
                {"name": "t-echo", "data": {"value": 1}, "options": {"job_id": "api-1"}})
    assert made.status_code == 201 and made.json() == {"id": "api-1", "created": True}
    again = call("post", f"/queues/{Q}/jobs", MANAGE,
                 {"name": "t-echo", "data": {"value": 2}, "options": {"job_id": "api-1"}})
    assert again.status_code == 200 and again.json()["created"] is False
    job = call("get", f"/queues/{Q}/jobs/api-1", MANAGE).json()
    assert (job["state"], job["data"], job["client_id"]) == (
        "waiting", {"value": 1, "note": ""}, "ops-bot")
    assert call("post", f"/queues/{Q}/jobs/api-1/priority", MANAGE,
                {"priority": 3}).json() == {"id": "api-1", "priority": 3}
    assert call("delete", f"/queues/{Q}/jobs/api-1", MANAGE).json()["outcome"] == "cancelled"
    assert call("delete", f"/queues/{Q}/jobs/api-1", MANAGE).status_code == 409


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), [
    ("post", f"/queues/{Q}/jobs", {"name": "t-echo", "data": {"value": "x"}}, 422, "data.value"),
    ("post", f"/queues/{Q}/jobs", {"name": "nope", "data": {}}, 422, "name"),
    ("post", "/queues/nope/jobs", {"name": "t-echo", "data": {"value": 1}}, 404, None),
    ("post", f"/queues/{Q}/jobs", {"name": "t-echo", "data": {"value": 1},
                                   "options": {"priority": 12}}, 422, "priority"),
    ("post", f"/queues/{Q}/jobs/missing/priority", {"priority": 1}, 404, None),
    ("get", f"/queues/{Q}/jobs/missing", None, 404, None),
    ("post", f"/queues/{Q}/scale", {"targetWorkers": -1}, 422, None),
    ("post", "/queues", {"name": "x", "config": {"min_workers": 9, "max_workers": 1}}, 422, None),
    ("post", "/queues", {"name": Q}, 409, None),
    ("post", f"/queues/{Q}/recurring", {"name": "t-echo", "data": {"value": 1},
                                         "cron": "61 * * * *"}, 422, "cron.minute"),
    ("get", "/workers/nobody@nowhere", None, 404, None),
])
def test_bad_input_gets_a_json_error_and_changes_nothing(
        r: redis.Redis, method: str, path: str, body: Any, status: int, field: str | None) -> None:
    response = call(method, path, MANAGE, body)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    if field:
        assert response.json()["field"] == field
    assert r.llen(Q) == 0 and not AuditEvent.objects.exists()


def test_payload_too_large_and_malformed_json(r: redis.Redis) -> None:
    with override_settings(COORDINATOR_MAX_JOB_DATA_SIZE=50):
        big = call("post", f"/queues/{Q}/jobs", MANAGE,
                   {"name": "t-sleep", "data": {"blob": "x" * 100}})
    assert big.status_code == 413 and big.json()["error"] == "PayloadTooLarge"
    broken = call("post", f"/queues/{Q}/jobs", MANAGE, raw="{not json")
    assert broken.status_code == 400
    assert r.llen(Q) == 0


def test_seed_failed_paths_requeue_by_job_id(r: redis.Redis) -> None:
    record("seed-1")
    listed = call("get", f"/queues/{Q}/failed", MANAGE).json()
    assert [j["id"] for j in listed["failedJobs"]] == ["seed-1"]
    assert listed["failedJobs"][0]["error"]["name"] == "LookupError"
    done = call("post", f"/queues/{Q}/failed/seed-1/requeue", MANAGE)
    assert done.status_code == 200 and done.json()["newJobId"] == "seed-1:r1"
    assert call("post", f"/queues/{Q}/failed/seed-1/requeue", MANAGE).status_code == 409
    assert call("post", f"/queues/{Q}/failed/never/requeue", MANAGE).status_code == 404
    event = AuditEvent.objects.get(action="requeue")
    assert event.actor == "client:ops-bot"
    stats = call("get", f"/queues/{Q}/failed/stats", MANAGE).json()
    assert stats["total_failed_jobs"] == 1
    assert call("delete", f"/queues/{Q}/failed?older_than_days=0", MANAGE).json()["purged"] == 1
    assert not DeadLetter.objects.exists()


def test_management_calls_are_audited_with_the_client_id(r: redis.Redis) -> None:
    call("post", f"/queues/{Q}/pause", MANAGE)
    call("post", f"/queues/{Q}/resume", MANAGE)
    assert call("post", f"/queues/{Q}/scale", MANAGE, {"targetWorkers": 2}).json()[
        "actualCount"] == 0
    assert list(AuditEvent.objects.order_by("pk").values_list("action", "actor")) == [
        ("pause", "client:ops-bot"), ("resume", "client:ops-bot"), ("scale", "client:ops-bot")]


def test_openapi_document_lists_the_paths() -> None:
    doc = Client().get("/openapi.json").json()
    for path in ("/queues/{name}/scale", "/queues/{name}/failed",
                 "/queues/{name}/failed/{job_id}/requeue", "/queues/{name}/jobs"):
        assert path in doc["paths"], path
    assert doc["components"]["securitySchemes"]["JWTBearer"]["scheme"] == "bearer"


def test_mint_token_command() -> None:
    out = StringIO()
    call_command("mint_token", "cli-client", "--scope", "queues:view:photo-processing",
                 stdout=out)
    principal = auth.verify(out.getvalue().strip())
    assert principal is not None and principal.client_id == "cli-client"
    assert principal.can("view", Q) and not principal.can("view", "maintenance")
    with pytest.raises(CommandError, match="unknown scope"):
        call_command("mint_token", "x", "--scope", "admin", stdout=StringIO())
    with override_settings(COORDINATOR_JWT_SECRET=""), \
            pytest.raises(CommandError, match="set JWT_SECRET"):
        call_command("mint_token", "x", "--scope", "queues:view", stdout=StringIO())


def test_rs256_tokens_with_a_public_key(r: redis.Redis) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with override_settings(COORDINATOR_JWT_PUBLIC_KEY=public,
                           COORDINATOR_JWT_PRIVATE_KEY=private):
        minted = auth.mint("rsa-client", ["queues:view"])
        assert jwt.get_unverified_header(minted)["alg"] == "RS256"
        assert call("get", f"/queues/{Q}/status", minted).status_code == 200
        assert auth.verify(minted.replace(minted[-10:], "A" * 10)) is None  # tampered


def test_metrics_can_require_a_token(r: redis.Redis) -> None:
    assert Client().get("/metrics").status_code == 200
    with override_settings(COORDINATOR_METRICS_REQUIRE_TOKEN=True):
        assert Client().get("/metrics").status_code == 401
        ok = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token('queues:view')}")
        assert ok.status_code == 200 and "jobs_scheduled_total" in ok.content.decode()


def test_clients_are_rate_limited_per_minute(r: redis.Redis) -> None:
    from queues.exceptions import RateLimited
    from queues.jobs import enqueue

    with override_settings(COORDINATOR_MAX_JOBS_PER_MINUTE=3):
        for n in range(3):
            assert call("post", f"/queues/{Q}/jobs", MANAGE,
                        {"name": "t-echo", "data": {"value": n}}).status_code == 201
        refused = call("post", f"/queues/{Q}/jobs", MANAGE,
                       {"name": "t-echo", "data": {"value": 9}})
        assert refused.status_code == 429 and refused.json()["error"] == "RateLimited"
        with pytest.raises(RateLimited):
            enqueue(Q, "t-echo", {"value": 9}, client_id="ops-bot")
        enqueue(Q, "t-echo", {"value": 9}, client_id="someone-else")
        enqueue(Q, "t-echo", {"value": 9})  # no client id: app code is not limited
        with override_settings(COORDINATOR_ENABLE_RATE_LIMITING=False):
            enqueue(Q, "t-echo", {"value": 9}, client_id="ops-bot")
    assert r.llen(Q) == 6


def test_recurring_jobs_are_disabled_and_enabled_with_the_manage_scope(r: redis.Redis) -> None:
    from queues.ops.scheduling import schedule_recurring

    job = schedule_recurring(Q, "t-echo", {"value": 1}, "*/5 * * * *")
    base = f"/queues/{Q}/recurring/{job.id}"
    assert call("post", f"{base}/disable", token("queues:view")).status_code == 403
    assert call("post", f"{base}/disable", token("queues:manage:maintenance")).status_code == 403
    off = call("post", f"{base}/disable", MANAGE)
    assert off.status_code == 200, off.content
    assert (off.json()["id"], off.json()["enabled"], off.json()["next_run"]) == (
        job.id, False, None)
    on = call("post", f"{base}/enable", token(f"queues:manage:{Q}"))
    assert on.status_code == 200 and on.json()["enabled"] is True and on.json()["next_run"]
    listed = call("get", f"/queues/{Q}/recurring", MANAGE).json()["recurring"]
    assert [(j["id"], j["enabled"]) for j in listed] == [(job.id, True)]
    assert list(AuditEvent.objects.order_by("pk").values_list("action", "actor")) == [
        ("recurring_create", "system"), ("disable_recurring", "client:ops-bot"),
        ("enable_recurring", "client:ops-bot")]


@pytest.mark.parametrize("where", ["an unknown id", "an id of another queue"])
@pytest.mark.parametrize("action", ["enable", "disable"])
def test_recurring_enable_and_disable_are_404_off_their_queue(
        r: redis.Redis, where: str, action: str) -> None:
    from django_celery_beat.models import PeriodicTask

    from queues.ops.scheduling import schedule_recurring

    job = schedule_recurring(Q, "t-echo", {"value": 1}, "*/5 * * * *")
    path = ("/queues/batch-processing/recurring/" + job.id if where.endswith("queue")
            else f"/queues/{Q}/recurring/424242")
    reply = call("post", f"{path}/{action}", MANAGE)
    assert reply.status_code == 404
    assert reply["Content-Type"].startswith("application/json")
    assert "no recurring job" in reply.json()["detail"]
    assert PeriodicTask.objects.get(pk=job.id).enabled
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["recurring_create"]


def test_enabling_a_recurring_job_that_ran_its_max_runs_is_409(r: redis.Redis) -> None:
    from datetime import UTC, datetime

    from celery.schedules import crontab
    from django_celery_beat.models import PeriodicTask

    from queues.jobs.producer import job_task
    from queues.ops.beat import enqueue_run
    from queues.ops.scheduling import schedule_recurring

    job = schedule_recurring(Q, "t-echo", {"value": 1}, "* * * * *", max_runs=1)
    enqueue_run(job_task(f"{Q}:t-echo"), PeriodicTask.objects.get(pk=job.id),
                datetime(2030, 1, 1, 12, tzinfo=UTC), crontab(minute="*"))
    refused = call("post", f"/queues/{Q}/recurring/{job.id}/enable", MANAGE)
    assert refused.status_code == 409
    assert refused.json()["error"] == "InvalidJobState"
    assert "max_runs=1" in refused.json()["detail"]
    assert not PeriodicTask.objects.get(pk=job.id).enabled


def test_openapi_document_lists_the_recurring_switches() -> None:
    paths = Client().get("/openapi.json").json()["paths"]
    for action in ("enable", "disable"):
        assert "post" in paths[f"/queues/{{name}}/recurring/{{recurring_id}}/{action}"]
