"""``manage.py mint_token <client-id> --scope queues:view ...``: a bearer token for the ops API."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queues.exceptions import CoordinatorError
from queues.http import auth


class Command(BaseCommand):
    help = "Mint a JWT for a client id with the given scopes (queues:view|enqueue|manage[:queue])."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client_id")
        parser.add_argument("--scope", action="append", required=True, dest="scopes")
        parser.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["ttl"] < 1:
            raise CommandError("--ttl must be at least 1 second")
        try:
            self.stdout.write(auth.mint(opts["client_id"], opts["scopes"], ttl_s=opts["ttl"]))
        except CoordinatorError as exc:
            raise CommandError(str(exc)) from exc
