"""One poison failure cannot block the dead-letter path (on SQLite and PostgreSQL).

A failure the database refuses as a row is quarantined in Redis with its
error; the failures behind it are written; nothing is lost. These run with
``transaction=True`` because a worker writes in autocommit mode, where a
refused statement does not abort the writes that follow it.
"""

from __future__ import annotations

import json
import logging
from io import StringIO
from typing import Any

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import connection

from deadletter import recording
from deadletter.models import DeadLetter
from queues import store
from queues.ops import health, metrics
from queues.store import keys
from tests.integration.test_deadletter_services import Q, failure

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db(transaction=True)]

NAN_PAYLOAD = '{"x": NaN}'  # what a lax JSON parser lets through; no JSON column stores it


def item(job_id: str, **kw: Any) -> dict[str, object]:
    return {"queue": Q, "job_id": job_id, "record": failure(job_id, **kw)}


def postgres() -> bool:
    return connection.vendor == "postgresql"


def test_a_poison_item_at_the_head_of_the_pending_list_does_not_block_the_rest(
        r: redis.Redis, builtin_queue_types: None, caplog: pytest.LogCaptureFixture) -> None:
    # As after a database outage: the poison item is first in line.
    for entry in (item("poison", payload=NAN_PAYLOAD), item("ok-1"), item("ok-2"), item("ok-3")):
        store.keep_pending_dead_letter(json.dumps(entry))
    with caplog.at_level(logging.ERROR, logger="deadletter"):
        assert recording.flush_pending() == 4
    assert sorted(DeadLetter.objects.values_list("job_id", flat=True)) == ["ok-1", "ok-2", "ok-3"]
    [held] = recording.quarantined(Q)
    assert held.job_id == "poison" and held.record["data"] == NAN_PAYLOAD
    assert held.error.startswith("IntegrityError" if not postgres() else "DataError")
    assert r.llen(keys.pending_dead_letters()) == 0
    assert "dead letter photo-processing/poison can never be written" in caplog.text


def test_record_failure_quarantines_a_poison_failure_and_writes_the_next_three(
        r: redis.Redis, builtin_queue_types: None) -> None:
    recording.record_failure(queue=Q, job_id="poison", record=failure("poison",
                                                                      payload=NAN_PAYLOAD))
    for n in range(3):
        recording.record_failure(queue=Q, job_id=f"ok-{n}", record=failure(f"ok-{n}"))
    assert DeadLetter.objects.count() == 3
    assert [q.job_id for q in recording.quarantined(Q)] == ["poison"]
    assert r.llen(keys.pending_dead_letters()) == 0


def test_a_nul_in_a_job_id_is_quarantined_on_postgresql_and_written_on_sqlite(
        builtin_queue_types: None) -> None:
    recording.record_failure(queue=Q, job_id="bad\x00id", record=failure("bad\x00id"))
    recording.record_failure(queue=Q, job_id="ok", record=failure("ok"))
    written = set(DeadLetter.objects.values_list("job_id", flat=True))
    held = [q.job_id for q in recording.quarantined(Q)]
    if postgres():  # text columns refuse NUL
        assert (written, held) == ({"ok"}, ["bad\x00id"])
    else:
        assert (written, held) == ({"ok", "bad\x00id"}, [])


def test_a_nul_in_the_error_text_is_escaped_not_lost(builtin_queue_types: None) -> None:
    record = {**failure("nul-error"), "error": "bad byte \x00 here", "traceback": "tb \x00"}
    recording.record_failure(queue=Q, job_id="nul-error", record=record)
    row = DeadLetter.objects.get(job_id="nul-error")
    assert (row.error_message, row.traceback) == ("bad byte \\x00 here", "tb \\x00")


def test_an_unparsable_pending_item_is_quarantined_and_the_rest_written(
        builtin_queue_types: None) -> None:
    store.keep_pending_dead_letter("{not json")
    store.keep_pending_dead_letter(json.dumps(item("after")))
    assert recording.flush_pending() == 2
    assert DeadLetter.objects.filter(job_id="after").exists()
    [held] = recording.quarantined(recording.UNPARSED_QUEUE)
    assert held.error == "ValueError: not a pending dead-letter item"
    assert json.loads(store.quarantined_dead_letters(recording.UNPARSED_QUEUE)[0])["raw"] == (
        "{not json")


def test_quarantine_shows_in_health_metrics_and_the_cli(builtin_queue_types: None) -> None:
    recording.record_failure(queue=Q, job_id="poison", record=failure("poison",
                                                                      payload=NAN_PAYLOAD))
    report = health.queue_health(Q)
    assert report.metrics is not None and report.metrics.quarantined_dead_letters == 1
    assert "dead_letter_quarantine" in {issue.rule for issue in report.issues}
    assert report.status == "degraded"
    scrape = metrics.render().decode()
    assert f'queue_dead_letters_quarantined{{queue="{Q}"}} 1.0' in scrape
    out = StringIO()
    call_command("jobqueue", "quarantine", Q, stdout=out)
    assert "poison" in out.getvalue() and "t-always-fails" in out.getvalue()
    with pytest.raises(CommandError, match="not-a-queue"):
        call_command("jobqueue", "quarantine", "not-a-queue")


def test_retry_writes_what_the_database_now_takes_and_keeps_the_rest(
        builtin_queue_types: None) -> None:
    recording.record_failure(queue=Q, job_id="poison", record=failure("poison",
                                                                      payload=NAN_PAYLOAD))
    # An entry whose cause was fixed (here: one that was always writable).
    fixed = {**item("fixed"), "error": "DataError: was refused", "quarantined_at": 1}
    store.quarantine_dead_letter(Q, json.dumps(fixed))
    out = StringIO()
    call_command("jobqueue", "quarantine", Q, "--retry", stdout=out)
    assert "wrote 1 quarantined dead letters" in out.getvalue()
    assert "1 still quarantined" in out.getvalue()
    assert DeadLetter.objects.filter(job_id="fixed").exists()
    assert [q.job_id for q in recording.quarantined(Q)] == ["poison"]
