"""Flower, started as the README starts it: behind basic auth, and showing each job's id."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests import fixtures_tasks as t
from tests.conftest import ROOT, wait_for
from tests.redis_plugin import free_port

pytestmark = pytest.mark.django_db(transaction=True)

CREDENTIALS = "tester:s3cret-flower"


def _env(**extra: str) -> dict[str, str]:
    # No FLOWER_* from the machine running the tests (FLOWER_UNAUTHENTICATED_API above all).
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    return {**base, **extra}


def _flower(port: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # The README's command; flowerconfig.py is found in the working directory.
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "coordinator_project", "flower",
         f"--port={port}", "--address=127.0.0.1"],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def _get(url: str, credentials: str | None = None) -> tuple[int, bytes] | None:
    """Status and body of a GET (None while Flower is not listening yet)."""
    request = urllib.request.Request(url)
    if credentials:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return None


def _status(url: str, credentials: str | None = None) -> int | None:
    answer = _get(url, credentials)
    return answer[0] if answer else None


def _json(url: str) -> Any:
    answer = _get(url, CREDENTIALS)
    return json.loads(answer[1]) if answer and answer[0] == 200 else None


@pytest.fixture
def flower(tmp_path: Path) -> Iterator[str]:
    """A protected Flower on a free port; yields its base URL."""
    port = free_port()
    proc = _flower(port, tmp_path / "flower.log", _env(FLOWER_BASIC_AUTH=CREDENTIALS))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{base}/healthcheck") or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, (tmp_path / "flower.log").read_text()[-3000:]
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_flower_pages_and_api_need_the_credentials(flower: str) -> None:
    for path in ("/api/workers", "/api/tasks", "/tasks", "/"):
        assert _status(f"{flower}{path}") == 401, path
        assert _status(f"{flower}{path}", "tester:wrong") == 401, path
        assert _status(f"{flower}{path}", CREDENTIALS) == 200, path


def test_flower_finds_a_job_by_its_id(r: redis.Redis, builtin_queue_types: None,
                                      worker_process: Any, flower: str) -> None:
    worker_process(("photo-processing",), concurrency=1, name="flowered",
                   env={"CELERY_TASK_EVENTS": "true"})
    workers = wait_for(lambda: _json(f"{flower}/api/workers?refresh=1"), timeout=30)
    assert any(name.startswith("flowered@") for name in workers)
    t.echo.delay(value=3)  # another job, which the search must not return
    handle = t.echo.delay(value=4)
    handle.wait(15)
    query = urllib.parse.urlencode({"search": handle.id})
    # Flower learns the final state from the task-succeeded event, a moment after the job.
    found = wait_for(lambda: (tasks := _json(f"{flower}/api/tasks?{query}"))
                     and all(v["state"] == "SUCCESS" for v in tasks.values()) and tasks,
                     timeout=15)
    [task] = found.values()
    assert task["name"] == "photo-processing:t-echo" and task["state"] == "SUCCESS"
    assert task["kwargs"] == repr({"job_id": handle.id}) and "'value': 4" in task["args"]
    exact = urllib.parse.urlencode({"search": f"kwargs:job_id={handle.id}"})
    assert list(_json(f"{flower}/api/tasks?{exact}")) == list(found)


@pytest.mark.parametrize(("value", "message"), [
    ("", b"Flower refuses to start without credentials: set FLOWER_BASIC_AUTH="),
    ("no-password", b"FLOWER_BASIC_AUTH must be user:password pairs"),
    ("user:", b"FLOWER_BASIC_AUTH must be user:password pairs"),
])
def test_flower_refuses_to_start_without_usable_credentials(tmp_path: Path, value: str,
                                                            message: bytes) -> None:
    port = free_port()
    log = tmp_path / "flower.log"
    proc = _flower(port, log, _env(FLOWER_BASIC_AUTH=value))
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"Flower started: {log.read_text()[-2000:]}") from None
    assert code != 0
    assert message in log.read_bytes()
    assert _get(f"http://127.0.0.1:{port}/") is None
