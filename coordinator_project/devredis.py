"""Find a Redis for local runs: ``REDIS_URL`` if it answers, else a private server.

Run as ``python -m coordinator_project.devredis``; prints the URL to use, or
exits non-zero with a sentence saying how to get Redis. A private server keeps
its data (AOF) in ``.run/redis`` and is reused by later runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import redis

RUN_DIR = Path(__file__).resolve().parent.parent / ".run"
PRIVATE_PORT = 6391


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, ValueError):
        return False


def start_private() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("No Redis answers at REDIS_URL and redis-server is not on PATH. Install it "
                 "(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) "
                 "or set REDIS_URL to a running Redis.")
    url = f"redis://127.0.0.1:{PRIVATE_PORT}/0"
    if answers(url):
        return url
    data = RUN_DIR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [binary, "--port", str(PRIVATE_PORT), "--bind", "127.0.0.1", "--daemonize", "yes",
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
         "--dir", str(data), "--logfile", str(data / "redis.log"),
         "--pidfile", str(data / "redis.pid")], check=True)
    for _ in range(100):
        if answers(url):
            return url
        time.sleep(0.05)
    sys.exit(f"redis-server did not start on port {PRIVATE_PORT}; see {data / 'redis.log'}")


def main() -> None:
    from coordinator_project import settings  # the one place that reads the environment

    url = settings.REDIS_URL
    if not answers(url):
        print(f"No Redis at {url}; starting a private redis-server", file=sys.stderr)
        url = start_private()
    print(url)


if __name__ == "__main__":
    main()
