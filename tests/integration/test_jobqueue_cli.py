"""``manage.py jobqueue``: output, progress, and a sentence with a non-zero exit on bad input."""

from __future__ import annotations

from io import StringIO

import pytest
import redis
from django.core.management import CommandError, call_command

from deadletter.models import AuditEvent, DeadLetter
from queues import store
from tests.integration.test_deadletter_services import Q, record

pytestmark = [pytest.mark.db_vendors, pytest.mark.django_db]


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("jobqueue", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_failed_lists_dead_letters(r: redis.Redis) -> None:
    row = record("cli-1")
    out, _ = run("failed", Q)
    assert "cli-1" in out and "LookupError" in out and str(row.pk) in out
    assert "No open dead letters" in run("failed", "batch-processing")[0]


def test_requeue_one_by_id_or_job_id_and_all_with_progress(r: redis.Redis) -> None:
    a, _b, _c = record("cli-a"), record("cli-b"), record("cli-c")
    assert "as job cli-a:r1" in run("requeue", Q, str(a.pk))[0]
    assert "as job cli-b:r1" in run("requeue", Q, "cli-b", "--reason", "retry")[0]
    out, err = run("requeue", Q, "--all")
    assert "requeued 1 of 1 dead letters" in out
    assert "100%" in err  # the progress bar
    assert DeadLetter.objects.requeueable().count() == 0
    assert AuditEvent.objects.filter(action="requeue", actor__startswith="cli:").count() == 3


def test_purge_older_than(r: redis.Redis) -> None:
    record("cli-old", finished_at=store.now_ms() - 8 * 86400 * 1000)
    record("cli-new")
    assert "purged 1 dead letters" in run("purge", Q, "--older-than", "7d")[0]
    assert list(DeadLetter.objects.values_list("job_id", flat=True)) == ["cli-new"]


@pytest.mark.parametrize(("args", "message"), [
    (("failed", "no-such-queue"), "Queue type 'no-such-queue' is not registered"),
    (("requeue", Q, "424242"), "Dead letter 424242 not found"),
    (("requeue", Q, "no-such-job"), "No dead letter for job 'no-such-job'"),
    (("requeue", Q), "give a dead-letter id or job id, or --all"),
    (("purge", Q), "give --older-than (e.g. 7d) or --all"),
    (("purge", Q, "--older-than", "soon"), "'soon' is not a duration"),
    (("purge", "no-such-queue", "--all"), "Queue type 'no-such-queue' is not registered"),
    (("create", "reports", "--config", '{"max_workers": 2, "max_workers": 3}'),
     "--config is not strict JSON: duplicate key"),
    (("create", "reports", "--config", "[1]"), "--config must be a JSON object"),
    (("recurring", "add", Q, "t-echo", "* * * * *", '{"value": NaN}'),
     "DATA-JSON is not strict JSON"),
    (("recurring", "add", Q, "t-echo", "* * * * *", "{oops"), "DATA-JSON is not strict JSON"),
])
def test_bad_input_fails_with_a_sentence(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(*args)
    assert not AuditEvent.objects.exists()


def test_cli_exits_non_zero(r: redis.Redis) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import worker_database_url

    done = subprocess.run([sys.executable, "manage.py", "jobqueue", "failed", "no-such-queue"],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "DATABASE_URL": worker_database_url()})
    assert done.returncode != 0
    assert "Queue type 'no-such-queue' is not registered" in done.stderr


def test_disable_and_enable_recurring(r: redis.Redis) -> None:
    from django_celery_beat.models import PeriodicTask

    from queues.ops.scheduling import schedule_recurring

    job = schedule_recurring(Q, "t-echo", {"value": 1}, "*/5 * * * *")
    assert run("disable-recurring", job.id)[0] == f"recurring {job.id} ({Q}:t-echo) disabled\n"
    assert not PeriodicTask.objects.get(pk=job.id).enabled
    out, _ = run("enable-recurring", job.id)
    assert out.startswith(f"recurring {job.id} ({Q}:t-echo) enabled; next run 20")
    assert PeriodicTask.objects.get(pk=job.id).enabled
    events = AuditEvent.objects.filter(actor__startswith="cli:").order_by("pk")
    assert list(events.values_list("action", "target_id")) == [
        ("disable_recurring", job.id), ("enable_recurring", job.id)]


@pytest.mark.parametrize("verb", ["enable-recurring", "disable-recurring"])
def test_an_unknown_recurring_id_fails_with_a_sentence(verb: str) -> None:
    with pytest.raises(CommandError, match="Job '424242' not found in queue 'recurring'"):
        run(verb, "424242")
    assert not AuditEvent.objects.exists()
