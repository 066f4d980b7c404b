"""``JobRecord`` from a record's fields, and the one exit of a terminal failure (no I/O)."""

from __future__ import annotations

import ast
from pathlib import Path

from queues.store import JobRecord
from queues.store.records import FIELDS

ROOT = Path(__file__).resolve().parents[2]


def _values(**given: str) -> list[str | None]:
    return [given.get(name) for name in FIELDS]


def test_a_record_reads_typed_with_the_enqueue_defaults() -> None:
    record = JobRecord.from_values(_values(
        id="j1", queue="q", name="n", task="q:n", state="waiting", data='{"a":1}',
        priority="3", gen="2", trace_id="t", attempts_made="1", max_attempts="5",
        opts='{"backoff":{"type":"fixed","delay":10}}'))
    assert record is not None
    assert (record.priority, record.gen, record.attempts_made, record.max_attempts) == (3, 2, 1, 5)
    assert record.client_id == ""
    assert record.options["backoff"]["delay"] == 10


def test_a_record_without_an_id_is_no_job() -> None:
    assert JobRecord.from_values(_values(progress="5")) is None
    bare = JobRecord.from_values(_values(id="j1"))
    assert bare is not None and (bare.options, bare.max_attempts) == ({}, 1)


def test_only_the_failure_exit_sends_job_failed() -> None:
    senders = []
    for app in ("queues", "workers", "deadletter", "coordinator_project"):
        for path in sorted((ROOT / app).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if (isinstance(node, ast.Attribute) and node.attr == "send"
                        and isinstance(node.value, ast.Name) and node.value.id == "job_failed"):
                    senders.append(str(path.relative_to(ROOT)))
    assert senders == ["queues/jobs/failures.py"]
