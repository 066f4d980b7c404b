"""docker-compose.yml names real parts of the project (no Docker engine runs here)."""

from __future__ import annotations

import importlib
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordinator_project import settings as project_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SEED_ENV = {
    "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "REDIS_KEY_PREFIX",
    "DEFAULT_JOB_ATTEMPTS", "DEFAULT_JOB_BACKOFF_DELAY", "DEFAULT_JOB_PRIORITY",
    "DEFAULT_WORKER_CONCURRENCY", "WORKER_STALLED_INTERVAL", "WORKER_RETRY_PROCESS_DELAY",
    "MAX_JOB_DATA_SIZE", "MAX_JOB_AGE", "ENABLE_RATE_LIMITING", "MAX_JOBS_PER_MINUTE",
    "ENABLE_METRICS_COLLECTION", "METRICS_COLLECTION_INTERVAL", "ENABLE_HEALTH_CHECKS",
    "HEALTH_CHECK_INTERVAL", "ENABLE_AUTO_SCALING", "AUTO_SCALING_CHECK_INTERVAL",
    "SCALING_COOLDOWN_PERIOD",
}


def _command(name: str) -> list[str]:
    return [str(part) for part in SERVICES[name].get("command", [])]


def test_redis_is_redis7_with_aof_and_a_healthcheck() -> None:
    redis = SERVICES["redis"]
    assert redis["image"] == "redis:7"
    assert _command("redis")[1:3] == ["--appendonly", "yes"]
    assert "--appendfsync" in _command("redis") and "everysec" in _command("redis")
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_one_worker_per_builtin_queue_type_and_exactly_one_beat() -> None:
    builtin = importlib.import_module("queues.migrations.0002_builtin_queue_types").BUILTIN
    served = set()
    for name in SERVICES:
        cmd = _command(name)
        if cmd[:4] == ["celery", "-A", "coordinator_project", "worker"]:
            served.update(cmd[cmd.index("-Q") + 1].split(","))
    assert served == {row["name"] for row in builtin}
    beats = [n for n in SERVICES if _command(n)[3:4] == ["beat"]]
    assert beats == ["beat"]
    assert SERVICES["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_commands_name_real_modules() -> None:
    for name in SERVICES:
        cmd = _command(name)
        if not cmd:
            assert SERVICES[name]["image"].startswith(("redis:", "postgres:"))
        elif cmd[0] == "celery":
            app_module = cmd[cmd.index("-A") + 1]
            assert hasattr(importlib.import_module(app_module), "celery_app")
        elif cmd[0] == "gunicorn":
            module, attr = cmd[1].split(":")
            assert attr == "application" and Path(ROOT, *module.split(".")).with_suffix(
                ".py").exists()
        elif cmd[:2] == ["python", "manage.py"]:
            assert (ROOT / "manage.py").exists()
    assert "3000:3000" in SERVICES["web"]["ports"]
    assert "5555:5555" in SERVICES["flower"]["ports"]
    assert _command("flower")[3] == "flower"


def test_app_services_get_every_seed_env_var() -> None:
    for name in ("web", "worker-photo-processing", "beat", "flower"):
        assert set(SERVICES[name]["environment"]) >= SEED_ENV, name
    source = Path(project_settings.__file__).read_text()
    for var in SEED_ENV:
        assert f'"{var}"' in source, f"settings.py does not read {var}"


REQUIRED_HOSTS = {"job-queue-coordinator", "localhost", "127.0.0.1", "[::1]"}


def test_long_running_services_restart_and_migrate_runs_once() -> None:
    for name, service in SERVICES.items():
        expected = "no" if name == "migrate" else "unless-stopped"
        assert service.get("restart") == expected, name


def test_web_starts_after_migrate_has_completed() -> None:
    for name in ("web", "beat", "worker-photo-processing", "worker-batch-processing",
                 "worker-maintenance"):
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
    assert SERVICES["web"]["networks"]["default"]["aliases"] == ["job-queue-coordinator"]
    assert depends["redis"] == depends["postgres"] == {"condition": "service_healthy"}


def test_allowed_hosts_are_explicit_and_name_the_seed_host() -> None:
    value = SERVICES["web"]["environment"]["DJANGO_ALLOWED_HOSTS"]
    assert value.startswith("${DJANGO_ALLOWED_HOSTS:-") and value.endswith("}")
    hosts = set(value.removeprefix("${DJANGO_ALLOWED_HOSTS:-").removesuffix("}").split(","))
    assert "*" not in hosts and hosts >= REQUIRED_HOSTS


def test_settings_default_allowed_hosts_name_the_seed_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DJANGO_ALLOWED_HOSTS", raising=False)
    # A fresh namespace, so the imported settings module stays as it is.
    namespace = runpy.run_path(project_settings.__file__)
    assert set(namespace["ALLOWED_HOSTS"]) == REQUIRED_HOSTS | {"testserver"}
