"""The faults of the chaos command (``bench.chaos``), one function each.

A scenario starts its workers, starts the feeder (jobs enqueued continuously
during the fault), makes its fault ``rounds`` times and waits on each fault's
own condition (a job handed back, a worker exited), never a fixed time except
the fault's own duration. The command then stops the feeder, waits for every
acknowledged job to finish and counts.
"""

from __future__ import annotations

import base64
import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.chaos_harness import Cluster, Feeder, finished, handed_back, running
from bench.chaos_jobs import QUEUE, runs_key
from bench.common import redis_client

CUT_S = 10.0  # the network cut's own duration
SIGTERM_AFTER_S = 1.0  # how far into the long jobs the SIGTERM comes


@dataclass(frozen=True)
class Scenario:
    """``seconds``: about how long one round takes, to pace ``--jobs`` over the rounds, at
    most ``max_rate`` jobs/s (what the workers drain on a 2-core machine, so that recovery
    times measure recovery rather than a backlog the stream itself built)."""

    name: str
    what: str
    run: Callable[[Cluster, Feeder, int], None]
    rounds: tuple[int, int]  # (--quick, full)
    seconds: float
    ms: tuple[int, int]  # duration range of the streamed jobs
    max_rate: float
    duplicates_fatal: bool = False
    deaths_fatal: bool = False


def worker_kill(c: Cluster, feeder: Feeder, rounds: int) -> None:
    """Per round: SIGKILL a busy pool child of one worker, then all of the other worker
    (main process and children) and start a replacement."""
    workers = [c.start_worker("wk-a"), c.start_worker("wk-b")]
    feeder.start()
    for n in range(rounds):
        job_id = c.kill_busy_child(workers[n % 2])
        c.wait_job(job_id, handed_back, "the killed child's job to be handed back")
        victim = (n + 1) % 2
        lost_jobs = c.kill_worker(workers[victim])
        workers[victim] = c.start_worker(f"wk-r{n + 1}")
        for job_id in lost_jobs:
            c.wait_job(job_id, handed_back, "the killed worker's job to be recovered")


def redis_kill(c: Cluster, feeder: Feeder, rounds: int) -> None:
    """Per round: a 3 s job holds one of the worker's two slots, short jobs stream
    through the other, and redis-server is SIGKILLed and restarted on its port."""
    c.start_worker("rk")
    feeder.start()
    for _ in range(rounds):
        long_id = feeder.submit({"ms": 3000}, prefix="long")
        if long_id is None or not c.wait_job(long_id, running, "the long job to start"):
            continue
        c.crash_redis()
        c.wait_job(long_id, finished, "the long job to finish after the crash")


def network_cut(c: Cluster, feeder: Feeder, rounds: int) -> None:
    """Per round: two workers reach Redis through a TCP proxy, one with a 2 s job
    running; the proxy stops every byte for 10 s, then forwards again."""
    from tests.tcp_proxy import TcpProxy

    proxy = TcpProxy(c.redis.port)
    c.closers.append(proxy.close)  # after the backlog drained, not before
    env = {"REDIS_URL": proxy.url}
    c.start_worker("nc-a", env=env)
    c.start_worker("nc-b", env=env)
    feeder.start()
    for _ in range(rounds):
        long_id = feeder.submit({"ms": 2000}, prefix="long")
        if long_id is None or not c.wait_job(long_id, running, "the long job to start"):
            continue
        proxy.cut()
        time.sleep(CUT_S)
        proxy.restore()
        c.faults["network cut"] += 1
        c.fault_ends.append(time.time())
        c.wait_job(long_id, finished, "the long job to finish after the cut")


def sigterm(c: Cluster, feeder: Feeder, rounds: int) -> None:
    """Per round: four 10 s jobs (locks of 3 s) fill both workers' two slots; 1 s in,
    one worker gets SIGTERM (a warm shutdown) and is replaced once it has exited."""
    workers = [c.start_worker("st-a"), c.start_worker("st-b")]
    feeder.start()
    for n in range(rounds):
        longs = [job_id for _ in range(4)
                 if (job_id := feeder.submit({"ms": 10_000}, prefix="long"))]
        if not all(c.wait_job(job_id, running, "a long job to start") for job_id in longs):
            continue
        time.sleep(SIGTERM_AFTER_S)  # the fault's own timing: 1 s into the jobs
        c.sigterm_worker(workers[n % 2])
        workers[n % 2] = c.start_worker(f"st-r{n + 1}")
        for job_id in longs:
            c.wait_job(job_id, finished, "a long job to finish")


def malformed_items() -> dict[str, tuple[str, bytes]]:
    """Broker items that are not runnable messages: name -> (Celery task id, bytes)."""
    from bench.chaos_jobs import chaos_work
    from coordinator_project.celery import app
    from queues.jobs.messages import MessageTemplate

    template = MessageTemplate(app, chaos_work, QUEUE)

    def envelope(**changes: object) -> tuple[str, bytes]:
        # A message sent around the coordinator (no job headers), then broken.
        built = template.build({"ms": 1}, priority=0, job_headers={})
        return built.task_id, json.dumps({**json.loads(built.body), **changes}).encode()

    # A real pickle of plain data (nothing that runs code when loaded).
    pickled = base64.b64encode(pickle.dumps((({"ms": 1},), {}, {}))).decode()
    return {
        "non-UTF-8 bytes": ("-", b"\xff\xfe\x00\x81 not text"),
        "non-JSON text": ("-", b"hello, I am not JSON"),
        "a JSON list": ("-", b"[1, 2, 3]"),
        "headers as a string": envelope(headers="task=x"),
        "body not base64": envelope(body="@@@ not base64 @@@"),
        "pickle content type": envelope(body=pickled,
                                        **{"content-type": "application/x-python-serialize"}),
        "30 MB body": envelope(body="A" * (30 * 1024 * 1024)),
    }


def malformed(c: Cluster, feeder: Feeder, rounds: int) -> None:
    """Push each malformed item straight into the queue's broker list ``rounds`` times,
    while two workers serve it, then stream normal jobs."""
    from coordinator_project.celery import app
    from queues import store
    from queues.jobs.messages import broker_key

    c.start_worker("mf-a")
    c.start_worker("mf-b")
    items = malformed_items()
    for _ in range(rounds):
        for _task_id, raw in items.values():
            redis_client().lpush(broker_key(app, QUEUE, 0), raw)
    c.faults["malformed item"] += rounds * len(items)
    c.fault_ends.append(time.time())
    feeder.start()
    c.checks.append(lambda: _malformed_report(items, rounds, store.quarantined_messages(QUEUE)))


def _malformed_report(items: dict[str, tuple[str, bytes]], rounds: int,
                      held: list[str]) -> list[str]:
    ran = [name for name, (task_id, _raw) in items.items()
           if task_id != "-" and redis_client().get(runs_key(task_id))]
    reasons = sorted({json.loads(entry)["reason"][:70] for entry in held})
    return [
        f"message quarantine (queues.store.quarantined_messages): {len(held)} items "
        f"(pushed {rounds * len(items)})",
        *(f"  quarantined: {reason}" for reason in reasons),
        f"malformed items that ran: {len(ran)} {ran or ''}".rstrip(),
    ]


SCENARIOS = {s.name: s for s in (
    Scenario("worker-kill", "SIGKILL a busy pool child, then a whole worker (main process "
             "and children), each round; two workers -c 2, a killed worker is replaced",
             worker_kill, (3, 3), 15.0, (20, 200), 15.0),
    Scenario("redis-kill", "SIGKILL redis-server and restart it on the same port while a "
             "worker (-c 2) has one slot busy (a 3 s job) and one free", redis_kill,
             (3, 3), 7.0, (1, 20), 40.0),
    Scenario("network-cut", "a 10 s cut of every byte between two workers (-c 2) and Redis, "
             "through tests.tcp_proxy.TcpProxy; one worker has a 2 s job running",
             network_cut, (1, 3), 15.0, (1, 20), 40.0),
    Scenario("sigterm", "SIGTERM a worker 1 s into two 10 s jobs (3 s locks) while another "
             "worker runs two more; the stopped worker is replaced once it exits",
             sigterm, (1, 2), 15.0, (1, 50), 40.0, duplicates_fatal=True),
    Scenario("malformed", "push 7 malformed items (non-UTF-8, non-JSON, JSON list, headers "
             "as a string, body not base64, pickle, 30 MB body) straight into the broker "
             "list of two workers (-c 2), then a stream of normal jobs", malformed,
             (1, 1), 10.0, (1, 20), 100.0, deaths_fatal=True),
)}
