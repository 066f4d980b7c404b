"""The pause of the worker's coordinator duties after a Redis or database error (no I/O)."""

from __future__ import annotations

from workers.bootsteps import retry_process_delay

DELAYS = {"photo-processing": 5000, "batch-processing": 10000, "maintenance": 30000}


def test_the_shortest_delay_of_the_served_queue_types() -> None:
    assert retry_process_delay(("batch-processing", "maintenance"), DELAYS, 7000) == 10.0
    assert retry_process_delay(("maintenance",), DELAYS, 7000) == 30.0
    assert retry_process_delay(("maintenance", "photo-processing"), DELAYS, 7000) == 5.0


def test_queues_without_a_queue_type_do_not_count() -> None:
    assert retry_process_delay(("celery", "maintenance"), DELAYS, 7000) == 30.0


def test_the_global_delay_when_the_registry_is_unreadable_or_serves_none() -> None:
    assert retry_process_delay(("maintenance",), None, 7000) == 7.0
    assert retry_process_delay(("celery",), DELAYS, 7000) == 7.0
    assert retry_process_delay((), DELAYS, 250) == 0.25
