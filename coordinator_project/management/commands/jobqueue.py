"""``manage.py jobqueue <verb>``: the coordinator's operations from the shell.

The front command of every app's verbs: each app keeps its own beside its subject
(``deadletter.management.verbs``, ``queues.management.verbs``,
``workers.management.verbs``), and only the project, which may import every app, puts
them together. Each verb calls the same service function the admin and the HTTP API use;
bad input exits non-zero with a sentence.
"""

from __future__ import annotations

from deadletter.management.verbs import DEAD_LETTER_VERBS
from queues.management.verb_command import VerbCommand
from queues.management.verbs import QUEUE_VERBS, SCHEDULE_VERBS
from workers.management.verbs import WORKER_VERBS


class Command(VerbCommand):
    help = ("Job queue operations: failed, requeue, purge, dead-letter stats, quarantine, "
            "schedule-maintenance, and the queue, job and worker verbs.")
    # In this order in --help, as before the verbs moved to their apps.
    groups = (DEAD_LETTER_VERBS, QUEUE_VERBS, WORKER_VERBS, SCHEDULE_VERBS)
