"""App config of ``coordinator_project``: listed in INSTALLED_APPS only for its commands.

Django finds management commands in installed apps alone, and the commands that put
every app together (``jobqueue``, ``demo``, ``ensure_demo_admin``) belong to the project,
which may import every app (DESIGN §3). It has no models, so no migrations; its label
is ``coordinator_project``.
"""

from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "coordinator_project"
    verbose_name = "Coordinator project"
