"""``manage.py demo``: run every process and a sample workload with a live status table."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queues.exceptions import CoordinatorError


class Command(BaseCommand):
    help = ("Start web (:3000), a worker per built-in queue type, beat and Flower (:5555), "
            "enqueue a sample workload and show live per-queue counts until Ctrl-C.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--jobs", type=int, default=200,
                            help="process-photo jobs in the workload (others scale with it)")
        parser.add_argument("--exit-when-done", action="store_true",
                            help="stop everything and exit once the workload has finished")

    def handle(self, *args: Any, **opts: Any) -> None:
        from coordinator_project import demo
        from workers.presence import wait_for_workers

        if opts["jobs"] < 1:
            raise CommandError("--jobs must be at least 1")
        supervisor = demo.Supervisor(flower_auth=demo.flower_credentials())
        supervisor.start_all()
        try:
            wait_for_workers(demo.QUEUES, timeout=60)
            screen = demo.Screen(demo.Logins(flower=supervisor.flower_auth,
                                             token=demo.token_line()))
            # The rates' baseline is taken before the workload, so they count all of it.
            screen.start()
            accepted = demo.enqueue_workload(opts["jobs"])
            self.stdout.write(f"enqueued {accepted} jobs")
            code = demo.watch(sys.stdout, screen, exit_when_done=opts["exit_when_done"],
                              alive=supervisor.dead)
        except KeyboardInterrupt:
            code = 0
        except (CoordinatorError, TimeoutError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            self.stdout.write("stopping processes...")
            supervisor.stop_all()
        if code:
            raise CommandError("a demo process exited early")
