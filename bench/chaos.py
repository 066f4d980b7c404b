"""Chaos command: fault scenarios against the real coordinator, with Jepsen-style counts.

    .venv/bin/python -m bench.chaos [--scenario NAME ...] [--jobs N] [--quick]
                                    [--fsync {everysec,always}] [--deadline S]

Scenarios (``bench/chaos_scenarios.py``): worker-kill, redis-kill, network-cut,
sigterm, malformed. Each runs in a subprocess of its own with a fresh private
``redis-server`` (AOF on, ``appendfsync everysec`` unless ``--fsync always``),
a private SQLite file and prefork ``celery -A coordinator_project worker``
subprocesses; the chaos process enqueues jobs continuously during the fault
(``bench/chaos_jobs.py``), then waits up to ``--deadline`` seconds for every
acknowledged job to finish and prints, per scenario: acknowledged, completed,
failed, lost (acknowledged, no record), duplicated (ran more than once, counted
by the job), stuck (not finished by the deadline), worker deaths (not made on
purpose) and recovery times.

Exit code 0 when no scenario lost a job or left one stuck, sigterm ran none
twice and malformed killed no worker; 1 with a sentence otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.chaos_harness import TERMINAL, Cluster, Feeder, Outcome, read_outcomes, wait_settled
from bench.chaos_jobs import QUEUE, QUEUE_CONFIG
from bench.chaos_scenarios import SCENARIOS, Scenario
from bench.common import configure, redis_client
from bench.delays import broker_length

JOB_MODULES = "coordinator_project.sample_jobs,bench.chaos_jobs"
Acks = list[tuple[str, float]]


@dataclass(frozen=True)
class Counts:
    """What one scenario did; ``first_after``/``backlog`` hold one entry per fault."""

    scenario: str
    setup: str
    acknowledged: int
    completed: int
    failed: int
    lost: int
    duplicated: int
    stuck: int
    worker_deaths: int
    refused: int
    refused_recorded: int
    first_after: list[float | None]
    backlog: list[tuple[int, float | None]]
    faults: dict[str, int]
    notes: list[str]
    logs: list[str]
    seconds: float


# ----- one scenario (the child process) ------------------------------------------
def run_child(args: argparse.Namespace) -> int:
    """Run scenario ``args.child`` and write its counts to ``<run dir>/<name>/result.json``."""
    scenario = SCENARIOS[args.child]
    here = Path(args.run_dir) / scenario.name
    here.mkdir(parents=True, exist_ok=True)
    # Redis data and worker logs (tests.conftest.WorkerProcess) go to the scenario's dir.
    os.environ["TMPDIR"] = tempfile.tempdir = str(here)
    cluster = Cluster(here, args.fsync)
    cluster.start_redis()
    try:
        configure({"REDIS_URL": cluster.redis.url, "JOB_MODULES": JOB_MODULES,
                   "DATABASE_URL": f"sqlite:///{here / 'db.sqlite3'}", "LOG_FORMAT": "text"},
                  "bench.chaos_jobs")
        from queues.ops.manager import create_queue

        create_queue(QUEUE, QUEUE_CONFIG)
        counts = run_scenario(scenario, cluster, args)
    finally:
        cluster.stop()
    (here / "result.json").write_text(json.dumps(asdict(counts)))
    return 0


def run_scenario(scenario: Scenario, c: Cluster, args: argparse.Namespace) -> Counts:
    """Faults while the feeder streams jobs; then the wait for every job, and the counts."""
    rounds = scenario.rounds[0 if args.quick else 1]
    rate = min(scenario.max_rate, max(1.0, args.jobs / (scenario.seconds * rounds)))
    feeder = Feeder(rate=rate, minimum=args.jobs, ms=scenario.ms)
    began = time.monotonic()
    try:
        scenario.run(c, feeder, rounds)
    except (RuntimeError, AssertionError) as exc:  # a fault that could not be made
        c.notes.append(f"the scenario stopped early: {exc}")
    if feeder.ident is not None:
        feeder.finish()
    ids = [job_id for job_id, _at in feeder.acked]
    fed = time.monotonic()
    if wait_settled(ids, args.deadline):
        c.notes.append(f"every job finished {time.monotonic() - fed:.1f} s after the feed ended")
    elif broker_length(redis_client(), QUEUE):
        c.dump_stacks()  # messages wait while workers live: where is each one stuck?
    for check in c.checks:
        c.notes.extend(check())
    c.notes.append(broker_note())
    setup = (f"appendfsync {args.fsync}; {rounds} round(s); stream of {args.jobs}+ jobs of "
             f"{scenario.ms[0]}-{scenario.ms[1]} ms at {rate:.0f}/s")
    return tally(c, feeder, setup, time.monotonic() - began)


def broker_note() -> str:
    """What is left in the broker: a stuck job with no message here was lost in flight."""
    from queues.store.broker import reserved_count

    return (f"left in the broker lists: {broker_length(redis_client(), QUEUE)}; in kombu's "
            f"unacked hash: {reserved_count()}")


def message_trail(c: Cluster, job_ids: list[str]) -> list[str]:
    """Which worker logs name the first message of each stuck job (none: lost in flight)."""
    from queues import store

    trail = []
    for job_id in job_ids:
        task_id, gen = store.fields(QUEUE, job_id, "task_id", "gen")
        seen = [w.log.name for w in c.workers
                if task_id and task_id in w.log.read_text(errors="replace")]
        trail.append(f"{job_id} (generation {gen}): its first message {task_id} is named in "
                     f"{', '.join(seen) or 'no worker log'}")
    return trail


def name_jobs(c: Cluster, outcomes: dict[str, Outcome]) -> None:
    """Name the jobs behind the counts in the notes, in the order they were acknowledged."""
    stuck = [job_id for job_id, o in outcomes.items()
             if o.state is not None and o.state not in TERMINAL]
    named = {
        "ran more than once": [job_id for job_id, o in outcomes.items() if o.runs > 1],
        "stuck": [f"{job_id} ({outcomes[job_id].state}, ran {outcomes[job_id].runs}x)"
                  for job_id in stuck],
        "lost (acknowledged, no record)": [job_id for job_id, o in outcomes.items()
                                           if o.state is None],
    }
    for label, found in named.items():
        if found:
            c.notes.append(f"{label}: {', '.join(found[:10])}{' ...' if len(found) > 10 else ''}")
    c.notes += message_trail(c, stuck[:5])


def tally(c: Cluster, feeder: Feeder, setup: str, seconds: float) -> Counts:
    outcomes = read_outcomes([job_id for job_id, _at in feeder.acked])
    states = Counter(o.state for o in outcomes.values())
    recorded = sum(1 for o in read_outcomes(feeder.refused).values() if o.state is not None)
    # Recovery is read off the stream's jobs, not the scenario's own long ones.
    stream = sorted((a for a in feeder.acked if a[0].startswith("job-")), key=lambda a: a[1])
    name_jobs(c, outcomes)
    return Counts(
        scenario=c.dir.name, setup=setup, acknowledged=len(outcomes),
        completed=states["completed"], failed=states["failed"], lost=states[None],
        duplicated=sum(1 for o in outcomes.values() if o.runs > 1),
        stuck=sum(n for state, n in states.items() if state is not None
                  and state not in TERMINAL),
        worker_deaths=len(c.unplanned_deaths()), refused=len(feeder.refused),
        refused_recorded=recorded,
        first_after=[first_after(stream, outcomes, t) for t in c.fault_ends],
        backlog=[backlog_at(feeder.acked, outcomes, t) for t in c.fault_ends],
        faults=dict(c.faults), notes=c.notes, logs=c.log_paths(), seconds=seconds)


def first_after(stream: Acks, outcomes: dict[str, Outcome], t: float) -> float | None:
    """Seconds from ``t`` until the first job acknowledged after it finished (None: never)."""
    for job_id, acked_at in stream:
        if acked_at >= t:
            done = outcomes[job_id].finished
            return None if done is None else done - t
    return None


def backlog_at(acked: Acks, outcomes: dict[str, Outcome],
               t: float) -> tuple[int, float | None]:
    """Jobs acknowledged before ``t`` and unfinished at ``t``; seconds until the last of them
    finished (None: one never did)."""
    ends = [outcomes[job_id].finished for job_id, acked_at in acked if acked_at < t]
    pending = [end for end in ends if end is None or end > t]
    if any(end is None for end in pending):
        return len(pending), None
    return len(pending), max((end - t for end in pending if end is not None), default=0.0)


# ----- the command (the parent process) ---------------------------------------------
def run_in_subprocess(name: str, args: argparse.Namespace, run_dir: Path) -> Counts | None:
    """Scenario ``name`` in a fresh interpreter (fresh Django, Redis, database)."""
    cmd = [sys.executable, "-m", "bench.chaos", "--child", name, "--run-dir", str(run_dir),
           "--jobs", str(args.jobs), "--fsync", args.fsync, "--deadline", str(args.deadline)]
    child = subprocess.Popen([*cmd, *(["--quick"] if args.quick else [])])
    try:
        child.wait()
    except KeyboardInterrupt:
        child.wait()  # Ctrl-C reached the child too: let it stop its workers and Redis
        raise
    result = run_dir / name / "result.json"
    if not result.exists():
        return None
    raw = json.loads(result.read_text())
    raw["backlog"] = [tuple(entry) for entry in raw["backlog"]]
    return Counts(**raw)


def seconds_list(values: list[float | None]) -> str:
    if not values:
        return "no fault was made"
    shown = ", ".join("never" if v is None else f"{v:.2f}" for v in values)
    worst = "never" if None in values else f"{max(v for v in values if v is not None):.2f} s"
    return f"worst {worst}  (per fault, s: {shown})"


def print_table(scenario: Scenario, k: Counts) -> None:
    print(f"\n== {k.scenario}: {scenario.what} ==")
    print(f"   {k.setup}; took {k.seconds:.0f} s; faults made: "
          + (", ".join(f"{what} x{n}" for what, n in k.faults.items()) or "none"))
    for label, value in (("acknowledged", k.acknowledged), ("completed", k.completed),
                         ("failed", k.failed), ("lost", k.lost), ("duplicated", k.duplicated),
                         ("stuck", k.stuck), ("worker deaths", k.worker_deaths)):
        print(f"   {label:<15}{value:>7}")
    print(f"   recovery A, end of fault -> first job enqueued after it completed: "
          f"{seconds_list(k.first_after)}")
    print("   recovery B, end of fault -> backlog that existed at the fault drained: "
          f"{seconds_list([drain for _n, drain in k.backlog])}; backlog sizes "
          f"{[n for n, _drain in k.backlog]}")
    print(f"   refused enqueues (an error, not a handle): {k.refused}, "
          f"of which recorded anyway: {k.refused_recorded}")
    for note in k.notes:
        print(f"   note: {note}")
    print(f"   logs: {Path(k.logs[0]).parent}/ ({', '.join(Path(p).name for p in k.logs)})")


def problems(scenario: Scenario, k: Counts) -> list[str]:
    found = []
    if k.lost:
        found.append(f"{k.scenario} lost {k.lost} acknowledged job(s)")
    if k.stuck:
        found.append(f"{k.scenario} left {k.stuck} job(s) unfinished at the deadline")
    if scenario.duplicates_fatal and k.duplicated:
        found.append(f"{k.scenario} ran {k.duplicated} job(s) more than once")
    if scenario.deaths_fatal and k.worker_deaths:
        found.append(f"{k.scenario} killed {k.worker_deaths} worker(s)")
    return found


def log_excerpt(k: Counts, limit: int = 12) -> list[str]:
    """The last error lines of the scenario's worker logs, for a failed verdict."""
    lines: list[str] = []
    for path in k.logs[:-1]:
        text = Path(path).read_text(errors="replace").splitlines()
        hits = [line for line in text if "CRITICAL" in line or "ERROR" in line]
        lines += [f"{Path(path).name}: {line[:200]}" for line in hits[-limit:]]
    return lines[-limit:]


def run_all(args: argparse.Namespace) -> int:
    run_dir = Path(tempfile.gettempdir()) / f"jq-chaos-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"chaos run in {run_dir} ({args.jobs} jobs per scenario, appendfsync {args.fsync})")
    failures: list[str] = []
    for name in args.scenario or list(SCENARIOS):
        scenario, counts = SCENARIOS[name], run_in_subprocess(name, args, run_dir)
        if counts is None:
            failures.append(f"{name} did not finish (its output is above, its logs in "
                            f"{run_dir / name})")
            continue
        print_table(scenario, counts)
        found = problems(scenario, counts)
        for line in log_excerpt(counts) if found else []:
            print(f"   log: {line}")
        failures += found
    if failures:
        print(f"\nFAIL: {'; '.join(failures)}.")
        return 1
    print("\nOK: no acknowledged job was lost or left unfinished in any scenario.")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", nargs="+", choices=list(SCENARIOS),
                        help="scenarios to run (default: all, in this order)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="jobs streamed per scenario, at least (default 2,000; 300 quick)")
    parser.add_argument("--quick", action="store_true", help="300 jobs and fewer rounds")
    parser.add_argument("--fsync", choices=("everysec", "always"), default="everysec",
                        help="Redis appendfsync policy (AOF is always on)")
    parser.add_argument("--deadline", type=float, default=60.0,
                        help="seconds after the feed ends by which every job must finish")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = 300 if args.quick else 2000
    if args.jobs < 1 or args.deadline <= 0:
        parser.error("--jobs and --deadline must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_child(args) if args.child else run_all(args)


if __name__ == "__main__":
    sys.exit(main())
