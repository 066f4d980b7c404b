"""The hook through which other apps add periodic duties to every worker.

``workers.bootsteps.CoordinatorStep`` runs its own duties (promoter, locks, stalled
sweep, presence, consumer sync) in one thread, and after them every duty registered
here. An app that may not import ``workers`` (DESIGN §3: ``deadletter``) reaches the
hook through Django's app registry, from its own ``AppConfig.ready()``::

    apps.get_app_config("workers").register_duty("dead letters", flush, interval_s=5.0)

``register_duty(name, run, *, interval_s)`` (``WorkersConfig``, backed by a
``DutyRegistry`` on that config object rather than module state):

- ``name`` labels the duty in the worker's log (``"<name> skipped: ..."``); registering
  a name again replaces the earlier duty, like a signal's ``dispatch_uid``.
- ``run()`` takes nothing and returns ``True`` when it did its work: it runs again
  ``interval_s`` seconds later. ``False`` says a resource it needs is unavailable (it
  logs why itself): it runs again after the worker's retry-process delay, the shortest
  ``retry_process_delay_ms`` of the served queue types.
- A ``BackendUnavailable`` or ``DatabaseError`` it raises is logged as a warning and
  retried after that same delay, as for the built-in duties.

Registration happens in every process that sets Django up; only a worker runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


class DutyFunction(Protocol):
    """One run of a registered duty: ``True`` when done, ``False`` when it must wait."""

    def __call__(self) -> bool: ...


@dataclass(frozen=True)
class RegisteredDuty:
    """A duty another app added: what to run, and how often when it succeeds."""

    name: str
    run: DutyFunction
    interval_s: float


class DutyRegistry:
    """The registered duties, in registration order (a name registered again keeps its place)."""

    def __init__(self) -> None:
        self._by_name: dict[str, RegisteredDuty] = {}

    def register(self, name: str, run: DutyFunction, *, interval_s: float) -> None:
        """Add (or replace) the duty ``name``.

        Raises:
            ValueError: ``interval_s`` is not a positive number of seconds.
        """
        if not interval_s > 0:
            raise ValueError(f"duty {name!r}: interval_s must be positive, not {interval_s!r}")
        self._by_name[name] = RegisteredDuty(name, run, interval_s)

    def __iter__(self) -> Iterator[RegisteredDuty]:
        return iter(tuple(self._by_name.values()))


def registered() -> tuple[RegisteredDuty, ...]:
    """The duties other apps registered, read from the installed ``workers`` app config.

    Raises:
        ImproperlyConfigured: ``workers`` is installed with an AppConfig that has no
            ``DutyRegistry`` (not ``workers.apps.WorkersConfig`` or a subclass).
    """
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    duties = getattr(apps.get_app_config("workers"), "duties", None)
    if not isinstance(duties, DutyRegistry):  # a custom config would lose the hook
        raise ImproperlyConfigured("INSTALLED_APPS must use workers.apps.WorkersConfig")
    return tuple(duties)
