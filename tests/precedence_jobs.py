"""Jobs of the option-precedence tests, importable by their subprocess too."""

from __future__ import annotations

from typing import Any

from queues.jobs import JobContext, job

INHERIT = "precedence-inherit"  # a queue type created without job options
OWN = "precedence-own"  # a queue type with its own job options
DECLARED: dict[str, Any] = {"attempts": 5, "priority": 2, "backoff": {"delay": 500}}


@job(INHERIT, "plain")
def plain_inherit(data: dict[str, Any], ctx: JobContext) -> None:
    """Declares no option: the queue type's or the global ones apply."""


@job(OWN, "plain")
def plain_own(data: dict[str, Any], ctx: JobContext) -> None:
    """Declares no option: the queue type's or the global ones apply."""


@job(OWN, "declared", **DECLARED)
def declared(data: dict[str, Any], ctx: JobContext) -> None:
    """Declares job-level options, above the queue type's."""
