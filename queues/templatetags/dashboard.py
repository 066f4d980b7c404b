"""Filters of the dashboard's templates: job times are integer ms since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template

from queues import store

register = template.Library()


@register.filter
def ms_time(value: int) -> str:
    """``2026-12-03 07:45:12`` (UTC) for a time in ms, "" for 0 (not set)."""
    if not value:
        return ""
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def ms_ago(value: int) -> str:
    """How long ago a time in ms was (``4.2 s``, ``3 min``, ``2.0 h``); "" for 0."""
    if not value:
        return ""
    seconds = max(0.0, (store.now_ms() - value) / 1000)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
