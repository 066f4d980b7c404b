"""A worker's own probe: ``/health`` and ``/ready`` over HTTP, for Kubernetes or a load
balancer, served from the worker's main process when ``WORKER_PROBE_PORT`` is set.

- ``GET /health``: 200 while the process runs (liveness).
- ``GET /ready``: 200 while this worker consumes: it heartbeats, and it is not
  ``stuck`` (taking no job for ``WORKER_STUCK_AFTER`` while its queues have work,
  ``workers.presence``) nor ``stale``; 503 with the reason otherwise, or while Redis
  cannot be read. A probe that restarts the worker on a failing ``/ready`` is the
  cure for the freeze a Celery consumer can fall into after a broker reconnect.

Answers are JSON; the server is a daemon thread of the standard library's
``ThreadingHTTPServer`` on every interface (a Kubernetes probe comes from the node).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger("workers.probe")
CONSUMING = ("active", "paused")  # a paused worker takes no job by choice


def readiness(hostname: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of ``/ready`` for the worker ``hostname``."""
    from queues.exceptions import BackendUnavailable, WorkerNotFound
    from workers import presence

    try:
        status = presence.worker_status(hostname)
    except BackendUnavailable as exc:
        return 503, {"status": "redis_unreachable", "worker": hostname, "detail": str(exc)}
    except WorkerNotFound:
        return 503, {"status": "unregistered", "worker": hostname,
                     "detail": "no heartbeat recorded yet"}
    body = {"status": status.status, "worker": hostname,
            "last_heartbeat": status.last_activity.isoformat()}
    return (200 if status.status in CONSUMING else 503), body


class _Handler(BaseHTTPRequestHandler):
    hostname = ""

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"status": "ok", "worker": self.hostname})
        elif self.path == "/ready":
            self._answer(*readiness(self.hostname))
        else:
            self._answer(404, {"error": f"no such probe {self.path!r}; /health or /ready"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("probe %s", format % args)


def serve(hostname: str, port: int) -> ThreadingHTTPServer:
    """Start answering probes for ``hostname`` on ``port`` in a daemon thread."""
    handler = type("ProbeHandler", (_Handler,), {"hostname": hostname})
    server = ThreadingHTTPServer(("", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="jq-probe", daemon=True).start()
    logger.info("worker probe on port %s (/health, /ready)", port)
    return server
