"""Run part of the suite against a private PostgreSQL cluster.

``python -m tests.pg_cluster [pytest args]`` starts a throw-away cluster
(initdb + pg_ctl from the machine's PostgreSQL binaries, on a free port,
trust auth, fsync off), points ``DATABASE_URL`` at it, runs pytest with the
given arguments and stops the cluster. It does not use the machine's running
PostgreSQL service, so it works when that service is down.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.redis_plugin import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or (
        [path] if (path := shutil.which(name)) else [])
    if not found:
        sys.exit(f"{name} not found: install PostgreSQL (Debian: apt-get install postgresql) "
                 "to run the PostgreSQL part of the suite")
    return str(found[-1])


def _as_owner(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, so use its own user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start(data: Path, port: int) -> None:
    if os.geteuid() == 0:
        shutil.chown(data, user="postgres")
    subprocess.run(_as_owner([_bin("initdb"), "-D", str(data), "-U", "postgres",
                              "--auth=trust", "-E", "UTF8"]), check=True,
                   stdout=subprocess.DEVNULL)
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off " \
              "-c full_page_writes=off -c synchronous_commit=off"
    subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-o", options, "-w",
                              "-l", str(data / "server.log"), "start"]), check=True,
                   stdout=subprocess.DEVNULL)


def stop(data: Path) -> None:
    subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                   check=False, stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def running(prefix: str = "jq-pg-") -> Iterator[tuple[int, Path]]:
    """A throw-away cluster on a free port: yields (port, data directory)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres")
    port = free_port()
    start(data, port)
    try:
        yield port, data
    finally:
        stop(data)
        shutil.rmtree(base, ignore_errors=True)


def main(args: list[str]) -> int:
    with running() as (port, _data):
        env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/coordinator"}
        env.pop("DATABASE_TEST_NAME", None)
        return subprocess.run([sys.executable, "-m", "pytest", *args], env=env,
                              check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
