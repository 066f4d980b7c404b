"""A ``manage.py`` command made of verbs: ``manage.py <command> <verb> [arguments]``.

Each app keeps the verbs of its own subject beside it, as a :class:`VerbGroup` in its
``management/verbs.py`` (dead letters in ``deadletter``, queues and jobs here, workers in
``workers``), so no app imports another's services to offer a command. A command lists the
groups it offers; ``coordinator_project``'s ``jobqueue`` offers all of them.

A handler takes the running command (for ``stdout``/``stderr``) and the parsed options as
keywords, plus ``actor`` (``cli:<login>``, kept in the audit log). It reports with
``cmd.stdout.write`` and refuses bad input with ``CommandError``; a ``CoordinatorError`` it
lets through becomes a ``CommandError`` with the same sentence (a non-zero exit).
"""

from __future__ import annotations

import getpass
from argparse import _SubParsersAction
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queues.exceptions import CoordinatorError

Subparsers: TypeAlias = "_SubParsersAction[CommandParser]"
# Handlers declare the options they read as keyword-only parameters and take the rest
# as ``**_``, which no Protocol can state; hence the loose callable type.
Handler: TypeAlias = Callable[..., None]


@dataclass(frozen=True)
class VerbGroup:
    """The verbs of one subject: a function adding their parsers, and a handler per verb."""

    add_parsers: Callable[[Subparsers], None]
    handlers: Mapping[str, Handler]


class VerbCommand(BaseCommand):
    """Parses ``<verb> ...`` and runs the handler of the group that declared that verb.

    Subclasses set ``groups``; the verbs are listed in ``--help`` in the groups' order.
    """

    groups: ClassVar[tuple[VerbGroup, ...]] = ()

    def add_arguments(self, parser: CommandParser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="verb")
        for group in self.groups:
            group.add_parsers(verbs)

    def handle(self, *args: Any, **opts: Any) -> None:
        handlers = {verb: run for group in self.groups for verb, run in group.handlers.items()}
        try:
            handlers[opts["verb"]](self, actor=f"cli:{getpass.getuser()}", **opts)
        except CoordinatorError as exc:
            raise CommandError(str(exc)) from exc
