"""Flower's configuration file: HTTP basic auth from settings, or no Flower at all.

``celery -A coordinator_project flower`` reads ``flowerconfig.py`` from the
working directory (Flower's ``--conf`` default) and executes it; every global
named like a Flower option sets that option. Flower itself would serve its pages
to anyone when no credentials are given (only its API answers 401), so this
file stops the process instead. Credentials come from the ``FLOWER_BASIC_AUTH``
setting (``coordinator_project/settings.py`` reads the variable), or from
Flower's own ``--basic-auth`` / ``--auth`` options.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings as _settings
from tornado.options import options as _flower_options

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordinator_project.settings")

_NO_CREDENTIALS = ("Flower refuses to start without credentials: set FLOWER_BASIC_AUTH="
                   "user:password (or pass Flower's --basic-auth or --auth).")
_MALFORMED = ("FLOWER_BASIC_AUTH must be user:password pairs separated by commas, "
              "each with a non-empty user and password.")


def _well_formed(credential: str) -> bool:
    user, sep, password = credential.partition(":")
    return bool(user and sep and password)


def _basic_auth() -> list[str]:
    """The credentials Flower checks, or exit with a sentence when there are none."""
    # Flower parsed its command line and FLOWER_* variables before running this
    # file; an empty FLOWER_BASIC_AUTH reaches it as [""], which is no credential.
    given = [item for item in _flower_options.basic_auth or [] if item]
    credentials = list(_settings.FLOWER_BASIC_AUTH) or given
    if not all(_well_formed(item) for item in credentials):
        sys.exit(_MALFORMED)
    if not (credentials or _flower_options.auth):
        sys.exit(_NO_CREDENTIALS)
    return credentials


basic_auth = _basic_auth()
# The coordinator's job id is the task's kwargsrepr ({'job_id': ...}, see
# queues/jobs/messages.py): show it in the task list, where the search box finds it.
tasks_columns = "name,uuid,kwargs,state,received,runtime,worker"
