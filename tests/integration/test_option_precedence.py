"""Four levels of job options: call > job declaration > queue type > global (DEFAULT_JOB_*).

The globals are unusual values (9 attempts, 12345 ms backoff, priority 7), so a
level that is skipped shows. ``DEFAULT_JOB_*`` are read when settings.py is
imported: one test sets them in the environment of a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from django.test import override_settings

from queues import store
from queues.jobs import enqueue
from queues.ops import manager
from tests import precedence_jobs as pj
from tests.conftest import ROOT, worker_database_url

GLOBALS = {"DEFAULT_JOB_ATTEMPTS": "9", "DEFAULT_JOB_BACKOFF_DELAY": "12345",
           "DEFAULT_JOB_PRIORITY": "7"}
unusual_globals = override_settings(**{f"COORDINATOR_{k}": int(v) for k, v in GLOBALS.items()})
OWN_OPTIONS = {"default_attempts": 4, "default_priority": 3, "backoff_delay_ms": 400}
CALL = {"attempts": 6, "priority": 1, "backoff": {"delay": 600}}

# (queue, job, payload, call options) -> (attempts, priority, backoff delay) with the globals above
CASES: dict[str, tuple[tuple[str, str, dict[str, Any], dict[str, Any]], tuple[int, int, int]]] = {
    "global": ((pj.INHERIT, "plain", {}, {}), (9, 7, 12345)),
    "built-in": (("photo-processing", "t-echo", {"value": 1}, {}), (3, 7, 2000)),
    "queue type": ((pj.OWN, "plain", {}, {}), (4, 3, 400)),
    "declaration": ((pj.OWN, "declared", {}, {}), (5, 2, 500)),
    "call": ((pj.OWN, "declared", {}, CALL), (6, 1, 600)),
}


def resolved(queue: str, job_id: str) -> tuple[int, int, int]:
    """Attempts, priority and backoff delay as the job's record holds them."""
    found = store.read_job(queue, job_id)
    assert found is not None
    record = found[0]
    opts = json.loads(record["opts"])
    assert (int(record["max_attempts"]), int(record["priority"])) == (
        opts["attempts"], opts["priority"])
    return opts["attempts"], opts["priority"], opts["backoff"]["delay"]


def create_queue_types() -> None:
    manager.create_queue(pj.INHERIT)
    manager.create_queue(pj.OWN, OWN_OPTIONS)


@pytest.mark.django_db
@pytest.mark.parametrize("level", list(CASES))
def test_each_level_wins_over_the_ones_below(level: str) -> None:
    create_queue_types()
    (queue, name, data, call), expected = CASES[level]
    with unusual_globals:
        handle = enqueue(queue, name, data, **call)
    assert resolved(queue, handle.id) == expected


@pytest.mark.django_db
def test_a_queue_type_may_set_some_options_and_inherit_the_rest() -> None:
    manager.create_queue(pj.INHERIT, {"default_attempts": 2})
    with unusual_globals:
        handle = enqueue(pj.INHERIT, "plain", {}, backoff={"type": "fixed"})
    assert resolved(pj.INHERIT, handle.id) == (2, 7, 12345)
    found = store.read_job(pj.INHERIT, handle.id)
    assert found is not None and json.loads(found[0]["opts"])["backoff"]["type"] == "fixed"


@pytest.mark.django_db
def test_queue_types_created_over_http_inherit_the_globals(client: Any) -> None:
    from tests.conftest import bearer

    response = client.post("/queues", {"name": pj.INHERIT, "config": {}},
                           content_type="application/json", headers=bearer())
    assert response.status_code == 201, response.content
    with unusual_globals:
        handle = enqueue(pj.INHERIT, "plain", {})
    assert resolved(pj.INHERIT, handle.id) == (9, 7, 12345)


ENQUEUE_IN_FRESH_PROCESS = """
import json, sys
import django
django.setup()
from queues.jobs import enqueue
import tests.precedence_jobs
cases = json.loads(sys.argv[1])
print(json.dumps({level: enqueue(q, name, data, **call).id
                  for level, (q, name, data, call) in cases.items()}))
"""


def enqueue_in_fresh_process(env: dict[str, str]) -> dict[str, str]:
    """Job ids by level, enqueued by a new process whose settings read ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in GLOBALS}
    cases = {level: case for level, (case, _expected) in CASES.items()}
    out = subprocess.run(
        [sys.executable, "-c", ENQUEUE_IN_FRESH_PROCESS, json.dumps(cases)], cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "coordinator_project.settings",
             "DATABASE_URL": worker_database_url(), **env},
        capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_environment_variables_are_the_lowest_level(builtin_queue_types: None) -> None:
    create_queue_types()
    ids = enqueue_in_fresh_process(GLOBALS)
    for level, ((queue, *_), expected) in CASES.items():
        assert resolved(queue, ids[level]) == expected, level
    # Without the variables, the same jobs get the seed's globals (3, 0, 2000).
    ids = enqueue_in_fresh_process({})
    assert resolved(pj.INHERIT, ids["global"]) == (3, 0, 2000)
    assert resolved("photo-processing", ids["built-in"]) == (3, 0, 2000)
    assert resolved(pj.OWN, ids["call"]) == (6, 1, 600)
