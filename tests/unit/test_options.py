"""Option validation and precedence: call > job default > queue type > global."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queues import options
from queues.exceptions import JobValidationError

NOW = 1_700_000_000_000


def level(**kw: object) -> options.JobOptions:
    return options.parse(kw, where="test")


def test_call_beats_job_beats_queue_beats_global() -> None:
    call = level(priority=1)
    job = level(priority=2, attempts=7)
    queue = level(priority=3, attempts=4, remove_on_complete=10)
    glob = level(priority=5, attempts=3, remove_on_complete=100, remove_on_fail=50)
    resolved = options.resolve(call, job, queue, glob, now_ms=NOW)
    assert resolved.priority == 1  # from the call
    assert resolved.attempts == 7  # from the job declaration
    assert resolved.remove_on_complete == 10  # from the queue type
    assert resolved.remove_on_fail == 50  # from the global defaults


def test_backoff_merges_key_by_key() -> None:
    resolved = options.resolve(
        level(backoff={"delay": 10}), level(backoff={"type": "fixed"}),
        level(backoff={"type": "exponential", "delay": 2000, "max_delay": 9000}), now_ms=NOW)
    assert resolved.backoff == options.Backoff(type="fixed", delay=10, max_delay=9000)


def test_false_remove_policy_is_a_choice_not_a_gap() -> None:
    resolved = options.resolve(level(remove_on_complete=False), level(remove_on_complete=5),
                               now_ms=NOW)
    assert resolved.remove_on_complete is False
    assert options.keep_count(False) == -1
    assert options.keep_count(True) == 0
    assert options.keep_count(7) == 7


@pytest.mark.parametrize(("raw", "field"), [
    ({"priority": 10}, "priority"),
    ({"priority": -1}, "priority"),
    ({"delay_ms": -5}, "delay_ms"),
    ({"attempts": 0}, "attempts"),
    ({"colour": "red"}, "colour"),
    ({"job_id": "has space"}, "job_id"),
    ({"remove_on_fail": -2}, "remove_on_fail"),
])
def test_bad_options_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(JobValidationError) as info:
        options.parse(raw, where="call")
    assert info.value.field is not None and info.value.field.startswith(field)
    assert field in str(info.value)


def test_bad_backoff_type_is_rejected_after_merge() -> None:
    with pytest.raises(JobValidationError, match=r"backoff\.type"):
        options.resolve(level(backoff={"type": "linear"}), now_ms=NOW)


def test_run_at_becomes_a_delay_and_conflicts_with_delay_ms() -> None:
    at = datetime.fromtimestamp(NOW / 1000, tz=UTC) + timedelta(seconds=3)
    assert options.resolve(level(run_at=at), now_ms=NOW).delay_ms == 3000
    with pytest.raises(JobValidationError, match="run_at"):
        options.resolve(level(run_at=at, delay_ms=5), now_ms=NOW)
    with pytest.raises(JobValidationError, match="timezone"):
        options.resolve(level(run_at=datetime(2030, 1, 1)), now_ms=NOW)
