"""The demo's live table: jobs/min over the time watched, workers and processes, the logins."""

from __future__ import annotations

import pytest

from coordinator_project.demo import (
    Logins,
    QueueRow,
    RateMeter,
    format_table,
    frame,
    workers_cell,
)

COUNTS = {"waiting": 5, "active": 2, "delayed": 1, "completed": 0, "failed": 0, "cancelled": 0}


def _row(name: str = "photo-processing", *, pools: tuple[int, ...] = (2,),
         rate: float | None = 12.0) -> QueueRow:
    return QueueRow(name, COUNTS, completed=40, failed=3, pools=pools, rate=rate)


def test_rate_is_over_the_time_watched_not_a_full_five_minutes() -> None:
    meter = RateMeter()
    assert meter.observe(1000.0, 100) is None  # the baseline, before the workload
    # 30 jobs in the first 10 s watched: 180/min (a 5-minute total over 5 would say 6).
    assert meter.observe(1010.0, 130) == pytest.approx(180.0)


def test_rate_waits_for_one_second_of_watching() -> None:
    meter = RateMeter()
    meter.observe(50.0, 0)
    assert meter.observe(50.4, 3) is None
    assert meter.observe(51.0, 3) == pytest.approx(180.0)


def test_rate_spans_at_most_the_window() -> None:
    meter = RateMeter(window_s=300.0)
    # 2 jobs a second for 400 s, sampled every second: the window holds the last 300 s.
    for second in range(401):
        rate = meter.observe(float(second), 2 * second)
    assert rate == pytest.approx(120.0)
    assert meter.samples[0][0] == pytest.approx(100.0)


def test_rate_forgets_work_older_than_the_window() -> None:
    meter = RateMeter(window_s=300.0)
    meter.observe(0.0, 0)
    meter.observe(60.0, 600)  # a burst in the first minute, then nothing
    for second in range(120, 661, 60):
        rate = meter.observe(float(second), 600)
    assert rate == 0.0


def test_workers_cell_counts_workers_and_processes() -> None:
    assert workers_cell((2, 1)) == "2w/3p"
    assert workers_cell((4,)) == "1w/4p"
    assert workers_cell(()) == "0w/0p"


def test_table_has_a_line_per_queue_with_workers_processes_and_rate() -> None:
    text = format_table([_row(), _row("maintenance", pools=(), rate=None)])
    header, photo, maintenance = text.splitlines()
    assert header.split() == ["queue", "wait", "active", "delay", "done", "failed",
                              "workers", "jobs/min"]
    assert photo.split() == ["photo-processing", "5", "2", "1", "40", "3", "1w/2p", "12.0"]
    assert maintenance.split()[-2:] == ["0w/0p", "-"]
    assert len(header) == len(photo) == len(maintenance)  # columns line up


def test_unfinished_counts_waiting_active_and_delayed() -> None:
    assert _row().unfinished == 8


def test_logins_stay_in_every_frame_they_are_given_to() -> None:
    logins = Logins(flower="demo:pw-123", token="ops API token (1 h, also in x): abc.def")
    text = frame("12:00:00", logins, [_row()])
    lines = text.splitlines()
    assert lines[0] == "12:00:00"
    assert "login admin / admin" in lines[1] and "http://127.0.0.1:3000/admin/" in lines[1]
    assert "/admin/dashboard/" in lines[1]
    assert "login demo / pw-123" in lines[2] and "http://127.0.0.1:5555/" in lines[2]
    assert lines[3] == "ops API token (1 h, also in x): abc.def"
    assert lines[-1].startswith("photo-processing")


def test_frame_without_logins_is_the_clock_and_the_table() -> None:
    text = frame("12:00:01", None, [_row()])
    assert text.splitlines()[0] == "12:00:01"
    assert "login" not in text and "token" not in text
    assert text.endswith("\n") and len(text.splitlines()) == 3
