"""Recurring jobs (DESIGN §5 ``queues.scheduling``); the code is ``queues.ops.scheduling``."""

from queues.ops.scheduling import (
    cancel_recurring,
    list_recurring,
    schedule_recurring,
    set_recurring_enabled,
)

__all__ = ["cancel_recurring", "list_recurring", "schedule_recurring", "set_recurring_enabled"]
