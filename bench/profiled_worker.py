"""``celery worker`` under cProfile from its ``worker_ready`` signal to its shutdown.

Used by ``bench/hotpath.py``: start-up (imports, Django, the blueprint) stays
out of the profile, which is written to ``$JQ_PROFILE_OUT`` when the worker
stops. Runs as ``python bench/profiled_worker.py -A coordinator_project worker ...``.
"""

from __future__ import annotations

import cProfile
import os
import sys
from typing import Any

from celery.signals import worker_ready, worker_shutdown

_profiler = cProfile.Profile()


@worker_ready.connect(weak=False)
def _start(**kwargs: Any) -> None:
    _profiler.enable()


@worker_shutdown.connect(weak=False)
def _stop(**kwargs: Any) -> None:
    _profiler.disable()
    _profiler.dump_stats(os.environ["JQ_PROFILE_OUT"])


if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", *sys.argv[1:]]
    sys.path[0] = os.getcwd()  # the project, not bench/, as for ``python -m celery``
    main()
