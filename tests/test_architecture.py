"""DESIGN §3: the apps' imports point one way (read from the source with ``ast``).

``workers`` and ``deadletter`` import ``queues``; neither imports the other; ``queues``
imports neither. Every ``import`` and ``from ... import`` counts wherever it stands (module
level, inside a function, under ``TYPE_CHECKING``), and relative imports are resolved.
``coordinator_project`` and ``tests`` may import everything. The first tests run the check
on small trees written here, so it is seen to bite; then it runs on the real tree. The last
test imports the Celery app in a fresh interpreter: it must load none of the apps.

The same walk checks that the store owns Redis: outside ``queues/store/`` no module
imports ``queues.store.keys`` or calls ``store.client()``; that the rooms of ``queues``
import only the rooms below them (``store`` < ``jobs`` < ``ops`` < ``http``); and that
no module of the apps imports itself round a circle (``producer -> task -> producer``),
however lazily.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from deadletter.worker_duties import DEAD_LETTER_FLUSH, DUTY_NAME, WorkerDutyHost
from workers import duties
from workers.apps import WorkersConfig

ROOT = Path(__file__).resolve().parent.parent
# app -> the apps it must never import
FORBIDDEN = {"queues": {"workers", "deadletter"}, "workers": {"deadletter"},
             "deadletter": {"workers"}}


def _module(root: Path, path: Path) -> tuple[str, bool]:
    """The dotted module name of ``path`` under ``root``, and whether it is a package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """The absolute names one import statement brings in."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[:len(package) - node.level + 1]  # each dot past the first: one up
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    if base:
        yield base
    else:  # ``from .. import workers`` at the top of the tree: the names are modules
        yield from (alias.name for alias in node.names)


def violations(root: Path) -> list[str]:
    """``file:line: app -> other (import name)`` for every forbidden import under ``root``."""
    found = []
    for app, forbidden in FORBIDDEN.items():
        for path in sorted((root / app).rglob("*.py")):
            module, is_package = _module(root, path)
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                for target in _targets(node, module, is_package):
                    if target.split(".")[0] in forbidden:
                        found.append(f"{path.relative_to(root)}:{node.lineno}: "
                                     f"{app} -> {target.split('.')[0]} (import {target})")
    return found


def _write(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


BROKEN = {
    "module level": ("queues/jobs.py", "import workers.presence\n",
                     "queues/jobs.py:1: queues -> workers (import workers.presence)"),
    "inside a function": (
        "queues/sub/health.py", "def f() -> None:\n    from deadletter import services\n",
        "queues/sub/health.py:2: queues -> deadletter (import deadletter)"),
    "under TYPE_CHECKING": (
        "workers/bootsteps.py",
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from deadletter.models import X\n",
        "workers/bootsteps.py:3: workers -> deadletter (import deadletter.models)"),
    "relative, from the package above": (
        "deadletter/apps.py", "from ..workers import presence\n",
        "deadletter/apps.py:1: deadletter -> workers (import workers)"),
    "relative, a sibling app by name": (
        "deadletter/management/verbs.py", "from ... import workers\n",
        "deadletter/management/verbs.py:1: deadletter -> workers (import workers)"),
}


@pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
def test_the_check_names_the_file_line_and_arrow_of_a_forbidden_import(
        tmp_path: Path, case: tuple[str, str, str]) -> None:
    name, source, expected = case
    _write(tmp_path, {"queues/__init__.py": "", "workers/__init__.py": "",
                      "deadletter/__init__.py": "", name: source})
    assert violations(tmp_path) == [expected]


def test_the_check_allows_the_arrows_of_design_section_3(tmp_path: Path) -> None:
    _write(tmp_path, {
        "queues/__init__.py": "", "queues/a.py": "from . import keys\nfrom .store import x\n",
        "queues/store/b.py": "from .. import keys\nfrom ..jobs import job\n",
        "workers/c.py": "from queues import store\nimport queues.store.keys\n",
        "deadletter/d.py": "from queues.signals import job_failed\nfrom .models import X\n",
        "deadletter/management/e.py": "from ..services import requeue\n",
        # The project and the tests may import every app; they are not walked.
        "coordinator_project/f.py": "import workers, deadletter\n",
    })
    assert violations(tmp_path) == []


def test_the_real_apps_import_only_what_design_section_3_allows() -> None:
    walked = {app: len(list((ROOT / app).rglob("*.py"))) for app in FORBIDDEN}
    assert all(count >= 5 for count in walked.values()), walked  # the walk found the apps
    assert violations(ROOT) == []


def test_deadletter_registers_its_flush_on_the_workers_hook() -> None:
    [flush] = [duty for duty in duties.registered() if duty.name == DUTY_NAME]
    assert flush.interval_s == DEAD_LETTER_FLUSH == 5.0


def _host(config: WorkersConfig) -> WorkerDutyHost:
    # Checked by mypy: the workers app config has the hook deadletter relies on.
    return config


def test_importing_the_celery_app_loads_none_of_the_apps() -> None:
    # coordinator_project/celery.py adds the worker step by name: a process that only
    # imports the app (a producer, beat, Flower) pays for no app module at import time.
    import subprocess
    import sys

    probe = ("import sys, coordinator_project.celery; print(','.join(sorted("
             "m for m in sys.modules if m.split('.')[0] in {'queues', 'workers', 'deadletter'})))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""


# ----- the store owns Redis -------------------------------------------------------------
STORE_OWNERS = ("queues/store/",)
WALKED = ("queues", "workers", "deadletter", "coordinator_project")


def store_bypasses(root: Path) -> list[str]:
    """``file:line: what`` for each import of ``queues.store.keys`` and each ``store.client()``
    outside the store: only the store names Redis keys and talks to Redis about jobs,
    queues, workers and stats."""
    found = []
    for app in WALKED:
        for path in sorted((root / app).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(STORE_OWNERS):
                continue
            module, is_package = _module(root, path)
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                what = _bypass(node, module, is_package)
                if what and isinstance(node, ast.stmt | ast.expr):
                    found.append(f"{relative}:{node.lineno}: {what}")
    return sorted(found)


def _bypass(node: ast.AST, module: str, is_package: bool) -> str | None:
    """What ``node`` does around the store, if anything."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        names = set(_targets(node, module, is_package))
        if isinstance(node, ast.ImportFrom):
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        hits = {"queues.store.keys", "queues.store.client"} & names
        return "imports " + ", ".join(sorted(hits)) if hits else None
    if (isinstance(node, ast.Attribute) and node.attr in {"client", "probe_client"}
            and isinstance(node.value, ast.Name) and node.value.id == "store"):
        return f"calls store.{node.attr}()"
    return None


def test_the_store_check_names_each_way_around_the_store(tmp_path: Path) -> None:
    _write(tmp_path, {
        "queues/__init__.py": "", "queues/ops/manager.py": "from queues.store import keys\n"
        "from queues import store\n"
        "def f():\n    return store.client().hget(keys.meta('q'), 'paused')\n",
        "workers/presence.py": "import queues.store.keys\n",
        "deadletter/recording.py": "from queues.store import client\n",
        "coordinator_project/demo.py": "from ..queues.store.keys import worker\n",
        # The store itself, its key module included, is where this belongs.
        "queues/store/workers.py": "from queues.store import client, keys\n",
        "queues/store/keys.py": "def meta(q): ...\n",
    })
    assert store_bypasses(tmp_path) == [
        "coordinator_project/demo.py:1: imports queues.store.keys",
        "deadletter/recording.py:1: imports queues.store.client",
        "queues/ops/manager.py:1: imports queues.store.keys",
        "queues/ops/manager.py:4: calls store.client()",
        "workers/presence.py:1: imports queues.store.keys",
    ]


def test_only_the_store_names_redis_keys_and_calls_redis() -> None:
    assert store_bypasses(ROOT) == []


# ----- no import circles ------------------------------------------------------------------
def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the apps it imports (anywhere in its source).

    ``from queues import store`` names the module ``queues.store``; importing a package a
    module lives in is implicit in Python, so it is not an arrow.
    """
    paths = {}
    for app in FORBIDDEN:
        for path in (root / app).rglob("*.py"):
            if "migrations" not in path.parts:
                paths[_module(root, path)] = path
    known = {module for module, _ in paths}
    graph: dict[str, set[str]] = {module: set() for module in known}
    for (module, is_package), path in paths.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(node, module, is_package):
                names = {target}
                if isinstance(node, ast.ImportFrom):
                    names |= {f"{target}.{alias.name}" for alias in node.names}
                graph[module] |= {name for name in names & known
                                  if name != module and not module.startswith(name + ".")}
    return graph


def import_cycles(root: Path) -> list[list[str]]:
    """Each set of modules that import each other round a circle, sorted."""
    graph = import_graph(root)

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    reaches = {module: reach(module) for module in graph}
    cycles = {frozenset(m for m in reaches[module] if module in reaches[m])
              for module in graph if module in reaches[module]}
    return sorted(sorted(cycle) for cycle in cycles)


def test_the_cycle_check_finds_a_circle_closed_by_a_lazy_import(tmp_path: Path) -> None:
    _write(tmp_path, {
        "queues/__init__.py": "", "queues/jobs/__init__.py": "",
        "queues/jobs/task.py": "from queues.jobs import producer, recovery\n",
        "queues/jobs/recovery.py": "from . import producer\n",
        "queues/jobs/producer.py": "def job_task():\n    from queues.jobs.task import JobTask\n",
        # Importing one's own package, or a module that imports nothing back, is no circle.
        "queues/store/__init__.py": "from queues.store.records import JobRecord\n",
        "queues/store/records.py": "import queues.store\nfrom queues import options\n",
        "queues/options.py": "", "workers/__init__.py": "", "deadletter/__init__.py": "",
        "workers/apps.py": "from workers.duties import DutyRegistry\n",
        "workers/duties.py": "DutyRegistry = dict\n",
    })
    assert import_cycles(tmp_path) == [
        ["queues.jobs.producer", "queues.jobs.recovery", "queues.jobs.task"]]


def test_no_module_of_the_apps_imports_itself_round_a_circle() -> None:
    graph = import_graph(ROOT)
    # The walk sees lazy imports: the request imports the task inside a method.
    assert "queues.jobs.task" in graph["queues.jobs.request"]
    assert {"queues.jobs.producer", "queues.jobs.recovery"} <= graph["queues.jobs.task"]
    assert import_cycles(ROOT) == []


# ----- the rooms of queues ----------------------------------------------------------------
VOCABULARY = {"conf", "exceptions", "signals", "options", "registry", "models", "logcontext"}
ROOMS = ("store", "jobs", "ops", "http")  # each may import the ones before it, not after


def _level(module: str) -> int | None:
    """0 for the shared vocabulary, 1.. for the rooms in order, None for an entry point."""
    parts = module.split(".")
    if parts[0] != "queues" or len(parts) < 2:
        return None
    if parts[1] in VOCABULARY:
        return 0
    return ROOMS.index(parts[1]) + 1 if parts[1] in ROOMS else None


def room_violations(root: Path) -> list[str]:
    """``module -> module`` for each import inside ``queues`` that points up the rooms.

    ``from queues.jobs import payload`` imports the package ``queues.jobs`` too, so it
    names both.
    """
    found = []
    for module, targets in import_graph(root).items():
        level = _level(module)
        if level is None:  # apps, admin, management, the §5 re-exports, other apps: any room
            continue
        found += [f"{module} -> {target}" for target in sorted(targets)
                  if (_level(target) or 0) > level]
    return sorted(found)


def test_the_room_check_names_an_import_that_points_up(tmp_path: Path) -> None:
    _write(tmp_path, {
        "queues/__init__.py": "", "queues/registry.py": "from queues import options\n",
        "queues/store/__init__.py": "from queues.jobs import payload\n",
        "queues/jobs/__init__.py": "from queues.jobs import producer\n",
        "queues/jobs/producer.py": "from queues import registry, store\n"
        "def f():\n    from queues.ops import metrics\n",
        "queues/ops/metrics.py": "from queues.http import auth\nfrom queues.jobs import info\n",
        "queues/http/auth.py": "from queues.ops import metrics\n",
        "queues/jobs/payload.py": "", "queues/jobs/info.py": "", "queues/options.py": "",
        # The entry points may import any room.
        "queues/admin.py": "from queues.http import auth\nfrom queues.ops import metrics\n",
        "workers/__init__.py": "", "deadletter/__init__.py": "",
    })
    assert room_violations(tmp_path) == [
        "queues.jobs.producer -> queues.ops.metrics",
        "queues.ops.metrics -> queues.http.auth",
        "queues.store -> queues.jobs",
        "queues.store -> queues.jobs.payload",
    ]


def test_the_rooms_of_queues_import_only_the_rooms_below_them() -> None:
    rooms = {module.split(".")[1] for module in import_graph(ROOT)
             if module.startswith("queues.") and _level(module)}
    assert rooms == set(ROOMS)
    assert room_violations(ROOT) == []


DESIGN_SECTION_5 = {
    "queues.jobs": ["job", "enqueue", "enqueue_many", "get_job", "cancel_job",
                    "change_priority", "scheduled_jobs"],
    "queues.manager": ["create_queue", "destroy_queue", "pause_queue", "resume_queue",
                       "queue_status", "list_queues", "clean_queue"],
    "queues.scheduling": ["schedule_recurring", "list_recurring", "cancel_recurring"],
    "queues.health": ["queue_health", "analyze_bottlenecks", "optimize_queue"],
    "workers.presence": ["list_workers", "worker_status", "pause_worker", "resume_worker"],
    "workers.scaling": ["scale_workers"],
    "deadletter.services": ["failed_jobs", "requeue_dead_letter", "archive_dead_letter",
                            "purge_dead_letters", "dead_letter_statistics"],
    "queues.exceptions": ["CoordinatorError"],
}


@pytest.mark.parametrize("module", DESIGN_SECTION_5)
def test_the_public_names_of_design_section_5_import_where_they_are_documented(
        module: str) -> None:
    import importlib

    imported = importlib.import_module(module)
    missing = [name for name in DESIGN_SECTION_5[module] if not callable(
        getattr(imported, name, None))]
    assert missing == []
