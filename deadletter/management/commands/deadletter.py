"""``manage.py deadletter <verb>``: the dead-letter verbs alone.

The same verbs, arguments and output as ``manage.py jobqueue failed|requeue|purge|stats|
quarantine|schedule-maintenance`` (``deadletter.management.verbs``).
"""

from __future__ import annotations

from deadletter.management.verbs import DEAD_LETTER_VERBS
from queues.management.verb_command import VerbCommand


class Command(VerbCommand):
    help = ("Dead-letter operations: failed, requeue, purge, stats, quarantine, "
            "schedule-maintenance.")
    groups = (DEAD_LETTER_VERBS,)
