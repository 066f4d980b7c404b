"""The hook through which other apps add worker duties, and deadletter's flush on it (no I/O)."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError

from deadletter import worker_duties
from workers.duties import DutyRegistry


def test_a_name_registered_again_replaces_the_duty_and_keeps_its_place() -> None:
    registry = DutyRegistry()
    registry.register("a", lambda: True, interval_s=1.0)
    registry.register("b", lambda: True, interval_s=2.0)
    registry.register("a", lambda: False, interval_s=3.0)
    assert [(duty.name, duty.interval_s, duty.run()) for duty in registry] == [
        ("a", 3.0, False), ("b", 2.0, True)]


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        DutyRegistry().register("a", lambda: True, interval_s=0)


def test_the_flush_waits_quietly_while_the_database_is_unavailable(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def unavailable() -> int:
        raise OperationalError("connection refused")

    monkeypatch.setattr(worker_duties, "flush_pending", unavailable)
    with caplog.at_level(logging.INFO, logger="queues.worker"):
        assert worker_duties.flush_pending_dead_letters() is False
    [entry] = caplog.records
    assert (entry.name, entry.levelno) == ("queues.worker", logging.INFO)
    assert entry.getMessage() == ("dead letters still pending, database unavailable: "
                                  "connection refused")


def test_the_flush_reports_done_when_it_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_duties, "flush_pending", lambda: 3)
    assert worker_duties.flush_pending_dead_letters() is True
