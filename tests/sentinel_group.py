"""A Redis primary, one replica and three sentinels on loopback ports, for failover tests.

The sentinels judge the primary down after ``DOWN_AFTER_MS`` and promote the replica;
a test SIGKILLs the primary (``kill_primary``) and waits for the promotion.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from tests.redis_plugin import free_port

MASTER = "jq-master"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def _wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout:g} s")


class SentinelGroup:
    """Primary, replica and three sentinels; each a ``redis-server`` process of its own."""

    def __init__(self, sentinel_password: str = "") -> None:
        self.sentinel_password = sentinel_password  # the sentinels' requirepass, if any
        self.dir = Path(tempfile.mkdtemp(prefix="jq-sentinel-"))
        self.binary = shutil.which("redis-server") or "redis-server"
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    # ----- what a process connects with ------------------------------------------------
    @property
    def sentinels(self) -> tuple[tuple[str, int], ...]:
        return tuple(("127.0.0.1", port) for port in self.sentinel_ports)

    @property
    def env(self) -> dict[str, str]:
        """The environment of a worker (or web, beat) that goes through the sentinels."""
        return {"REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
                "REDIS_SENTINEL_MASTER": MASTER,
                "REDIS_URL": f"redis://127.0.0.1:{self.primary_port}/0"}

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=1)

    def ask(self, sentinel_port: int, *args: str) -> list[Any]:
        """A ``SENTINEL`` command's reply, unparsed (redis-py's parsers vary by command)."""
        sentinel = redis.Redis(port=sentinel_port, socket_timeout=2, socket_connect_timeout=1,
                               password=self.sentinel_password or None)
        reply = sentinel.execute_command("SENTINEL", *args, NEVER_DECODE=True)
        return list(reply or [])

    def master_port(self) -> int:
        """The port the first sentinel that answers names as the master's."""
        for port in self.sentinel_ports:
            try:
                _host, master = self.ask(port, "get-master-addr-by-name", MASTER)
                return int(master)
            except (redis.RedisError, ValueError):
                continue
        raise AssertionError("no sentinel answered")

    # ----- life --------------------------------------------------------------------------
    def _run(self, port: int, *args: str) -> None:
        self.procs[port] = subprocess.Popen(
            [self.binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _server(self, port: int, *extra: str) -> None:
        self._run(port, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", str(self.dir),
                  "--logfile", str(self.dir / f"redis-{port}.log"), *extra)

    def start(self) -> None:
        self._server(self.primary_port)
        _wait(lambda: self.client(self.primary_port).ping(), 10, "primary up")
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        _wait(lambda: self.client(self.replica_port).info("replication")
              .get("master_link_status") == "up", 15, "replica in sync")
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"logfile {self.dir / f'sentinel-{port}.log'}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
                + (f"requirepass {self.sentinel_password}\n"
                   f"sentinel sentinel-pass {self.sentinel_password}\n"
                   if self.sentinel_password else ""))
            self._run(port, str(conf), "--sentinel")
        # Every sentinel knows the replica and the two others: a failover can be voted.
        for port in self.sentinel_ports:
            _wait(lambda p=port: len(self.ask(p, "replicas", MASTER)) == 1  # type: ignore[misc]
                  and len(self.ask(p, "sentinels", MASTER)) == 2, 30,
                  f"sentinel {port} sees the group")

    def kill_primary(self) -> float:
        """SIGKILL the primary; the monotonic time it was killed."""
        self.procs[self.primary_port].kill()
        self.procs[self.primary_port].wait(10)
        return time.monotonic()

    def wait_promoted(self, timeout: float = 30) -> None:
        """Until the sentinels name the replica as master and it answers as one."""
        _wait(lambda: self.master_port() == self.replica_port
              and self.client(self.replica_port).execute_command("ROLE")[0] == b"master",
              timeout, "replica promoted")

    def pause(self, port: int) -> None:
        os.kill(self.procs[port].pid, signal.SIGSTOP)

    def resume(self, port: int) -> None:
        os.kill(self.procs[port].pid, signal.SIGCONT)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def sentinel_group(sentinel_password: str = "") -> Iterator[SentinelGroup]:
    group = SentinelGroup(sentinel_password)
    try:
        group.start()
        yield group
    finally:
        group.stop()
