"""``manage.py ensure_demo_admin``: a local admin login for the demo (admin / admin).

Refuses to run unless DEBUG is on or the database is the local SQLite file,
so it cannot plant a known password in a shared database.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the demo's local superuser admin/admin if no superuser exists."

    def handle(self, *args: Any, **opts: Any) -> None:
        if not (settings.DEBUG or settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")):
            raise CommandError("ensure_demo_admin only runs against a local SQLite database")
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            return
        users.create_superuser("admin", "admin@localhost", "admin")
        self.stdout.write("created local superuser admin / admin for http://127.0.0.1:3000/admin/")
