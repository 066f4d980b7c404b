"""WSGI entry point (``gunicorn coordinator_project.wsgi``)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordinator_project.settings")
application = get_wsgi_application()
# Everything loaded so far lives as long as the process: keep it out of the
# garbage collector's full passes, which otherwise land on /metrics scrapes.
gc.freeze()
