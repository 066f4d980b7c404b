"""Flower shows the coordinator's workers and tracked jobs (as Celery tasks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
import redis

from tests import fixtures_tasks as t
from tests.conftest import ROOT, wait_for
from tests.redis_plugin import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


def test_flower_lists_workers_and_tasks(r: redis.Redis, builtin_queue_types: None,
                                        worker_process: Any, tmp_path: Any) -> None:
    worker_process(("photo-processing",), concurrency=1, name="flowered",
                   env={"CELERY_TASK_EVENTS": "true"})
    port = free_port()
    log = (tmp_path / "flower.log").open("wb")
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "coordinator_project", "flower",
         f"--port={port}", "--address=127.0.0.1", f"--db={tmp_path / 'flower.db'}"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"})
    try:
        base = f"http://127.0.0.1:{port}/api"
        workers = wait_for(lambda: _get(f"{base}/workers?refresh=1"), timeout=30)
        assert any(name.startswith("flowered@") for name in workers)
        handle = t.echo.delay(value=4)
        handle.wait(15)
        tasks = wait_for(lambda: _get(f"{base}/tasks"), timeout=15)
        [task] = [v for v in tasks.values() if v["name"] == "photo-processing:t-echo"]
        assert task["state"] == "SUCCESS" and "'value': 4" in task["args"]
    finally:
        flower.terminate()
        flower.wait(20)
