"""The web process as the README starts it serves admin's static files and the seed's host name.

Also: ``collectstatic`` as the image build runs it (no database, no Redis).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, worker_database_url
from tests.redis_plugin import free_port
from tests.webserver import WebProcess, running_web

pytestmark = pytest.mark.slow
SEED_HOST = "job-queue-coordinator:3000"


@pytest.fixture(scope="module")
def web(django_db_setup: None, django_db_blocker: Any) -> Iterator[WebProcess]:
    """gunicorn on the test database, with the documented default of DJANGO_ALLOWED_HOSTS."""
    with django_db_blocker.unblock():
        database_url = worker_database_url()
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("DJANGO_ALLOWED_HOSTS", None)
    with running_web(env) as process:
        yield process


def test_admin_css_is_served_by_the_web_process(web: WebProcess) -> None:
    response = web.get("/static/admin/css/base.css")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/css")
    assert b"body {" in response.body and len(response.body) > 1000


@pytest.mark.parametrize("host", [SEED_HOST, "localhost:3000", "127.0.0.1:3000", "[::1]:3000"])
def test_the_documented_hosts_are_allowed(web: WebProcess, host: str) -> None:
    response = web.get("/health", host=host)
    assert response.status == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_another_host_is_refused(web: WebProcess) -> None:
    assert web.get("/health", host="attacker.example").status == 400


def test_collectstatic_as_the_image_build_runs_it_needs_no_database_or_redis(
        tmp_path: Path) -> None:
    # The build's settings with STATIC_ROOT moved out of the checkout; the
    # database and Redis named here do not exist, so any use of them fails.
    (tmp_path / "build_settings.py").write_text(
        "from coordinator_project.settings import *  # noqa: F403\n"
        f"STATIC_ROOT = {str(tmp_path / 'static')!r}\n")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
           "DJANGO_SETTINGS_MODULE": "build_settings",
           "DATABASE_URL": "postgres://nobody@db.invalid:5432/none",
           "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    css = tmp_path / "static" / "admin" / "css"
    assert b"body {" in (css / "base.css").read_bytes()
    assert (css / "base.css.gz").exists(), "WhiteNoise's storage compresses what it collects"
