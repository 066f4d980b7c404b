"""The web process as the README starts it: ``gunicorn coordinator_project.wsgi:application``.

Tests start it as a subprocess on a free port with the environment they choose
(``DATABASE_URL`` of the test database, typically) and talk to it over HTTP.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, wait_for
from tests.redis_plugin import free_port


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebProcess:
    """A gunicorn subprocess serving the project on 127.0.0.1 (its log in a file)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"jq-web-{os.getpid()}-{self.port}.log"
        # The README's command, with the venv's gunicorn beside this interpreter.
        cmd = [str(Path(sys.executable).with_name("gunicorn")),
               "coordinator_project.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log.open("wb"),
                                     stderr=subprocess.STDOUT)

    def get(self, path: str, *, host: str | None = None, timeout: float = 10.0) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{self.port}"})
            reply = conn.getresponse()
            return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()},
                            reply.read())
        finally:
            conn.close()

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
        try:
            return self.get("/health", timeout=2).status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_for(self._answers, timeout, interval=0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def running_web(env: dict[str, str]) -> Iterator[WebProcess]:
    """A started and answering web process, stopped on exit."""
    web = WebProcess(env)
    try:
        web.wait_ready()
        yield web
    finally:
        web.stop()
