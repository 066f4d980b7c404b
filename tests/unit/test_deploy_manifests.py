"""deploy/kubernetes/, the Dockerfile and docker-compose.yml name real parts of the project.

No cluster or Docker engine runs here: every YAML document is parsed and checked against
what the project itself says: the variables settings.py reads, the URL routes, the worker
probe's handler, the built-in queue types, the metrics it exports and the commands
docker-compose.yml runs.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import inspect
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from django.http.request import validate_host
from django.test import Client, override_settings
from django.urls import resolve
from django_celery_beat.schedulers import DatabaseScheduler
from flower.urls import handlers as flower_handlers
from flower.views.monitor import Healthcheck

from coordinator_project import settings as project_settings
from queues.http import probes
from queues.ops import metrics
from workers import probe

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
BUILTIN = {row["name"]: row for row in importlib.import_module(
    "queues.migrations.0002_builtin_queue_types").BUILTIN}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
CELERY = ["celery", "-A", "coordinator_project"]
# The code the image runs (not tests/ or bench/, which .dockerignore or no manifest uses).
RUNTIME_CODE = ("coordinator_project", "queues", "workers", "deadletter",
                "flowerconfig.py", "manage.py")


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


DOCS = _documents()
# The image every service that builds the Dockerfile is tagged with.
APP_IMAGES = {s["image"] for s in SERVICES.values() if "build" in s}


def _of(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in DOCS if doc["kind"] == kind]


def _named(kind: str, name: str) -> dict[str, Any]:
    [doc] = [doc for doc in _of(kind) if doc["metadata"]["name"] == name]
    return doc


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["spec"]["template"]["spec"])


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod(doc)
    return [*pod.get("initContainers", []), *pod["containers"]]


def _command(container: dict[str, Any]) -> list[str]:
    return [str(part) for part in [*container.get("command", []), *container.get("args", [])]]


def _running(prefix: list[str]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, main container) of every workload whose main command starts with ``prefix``."""
    return [(doc, c) for kind in WORKLOADS for doc in _of(kind) for c in _pod(doc)["containers"]
            if _command(c)[:len(prefix)] == prefix]


def _compose_command(service: str) -> list[str]:
    return [str(part) for part in SERVICES[service].get("command", [])]


def _workers() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Queue -> (Deployment, container) of each worker."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for doc, container in _running([*CELERY, "worker"]):
        cmd = _command(container)
        queue = cmd[cmd.index("-Q") + 1]
        assert queue not in found, f"two worker Deployments for {queue}"
        found[queue] = (doc, container)
    return found


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ"
            and isinstance(node.value, ast.Name) and node.value.id == "os")


def _read_name(node: ast.AST) -> str | None:
    """The variable name of ``os.environ.get("X")``, ``_env_int("X", ...)``, ``os.environ["X"]``."""
    if isinstance(node, ast.Subscript) and _is_environ(node.value):
        key = node.slice
    elif isinstance(node, ast.Call) and node.args:
        func, key = node.func, node.args[0]
        helper = isinstance(func, ast.Name) and func.id.startswith("_env")
        environ_call = isinstance(func, ast.Attribute) and _is_environ(func.value)
        if not (helper or environ_call or ast.unparse(func) == "os.getenv"):
            return None
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def _variables_read() -> set[str]:
    files = [path for part in RUNTIME_CODE for path in (
        [ROOT / part] if part.endswith(".py") else (ROOT / part).rglob("*.py"))]
    names = {_read_name(node) for path in files for node in ast.walk(ast.parse(path.read_text()))}
    return {name for name in names if name}


def _env_names(container: dict[str, Any]) -> set[str]:
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        kind, ref = ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else (
            "Secret", source["secretRef"])
        doc = _named(kind, ref["name"])
        names |= set(doc.get("data", {})) | set(doc.get("stringData", {}))
    return names


def test_every_image_is_the_dockerfiles_or_redis_or_prometheus() -> None:
    assert len(APP_IMAGES) == 1, APP_IMAGES
    allowed = APP_IMAGES | {SERVICES["redis"]["image"]}
    for doc in (d for kind in WORKLOADS for d in _of(kind)):
        for container in _containers(doc):
            image = container["image"]
            assert image in allowed or image.startswith("prom/prometheus:v"), (
                doc["metadata"]["name"], image)
    assert {c["image"] for c in _containers(_named("StatefulSet", "redis"))} == {
        SERVICES["redis"]["image"]}


def test_coordinator_containers_get_only_variables_the_project_reads() -> None:
    read = _variables_read()
    assert {"REDIS_HOST", "DATABASE_URL", "WORKER_PROBE_PORT", "JWT_SECRET"} <= read
    checked = 0
    for doc in (d for kind in WORKLOADS for d in _of(kind)):
        for container in (c for c in _containers(doc) if c["image"] in APP_IMAGES):
            unknown = _env_names(container) - read
            assert not unknown, (doc["metadata"]["name"], unknown)
            checked += 1
    assert checked >= 8  # web, three workers, beat, flower, migrate and init containers


def test_config_and_secret_carry_what_compose_gives_the_app() -> None:
    config = _named("ConfigMap", "job-queue-coordinator-config")["data"]
    secret = _named("Secret", "job-queue-coordinator-secrets")["stringData"]
    compose_env = set(SERVICES["web"]["environment"])
    assert compose_env <= set(config) | set(secret), compose_env - set(config) - set(secret)
    assert not set(config) & set(secret)
    for key in ("DJANGO_SECRET_KEY", "JWT_SECRET", "DATABASE_URL", "REDIS_PASSWORD",
                "FLOWER_BASIC_AUTH"):
        assert "CHANGE-ME" in secret[key], f"{key} is not a marked placeholder"
    assert config["REDIS_HOST"] in {s["metadata"]["name"] for s in _of("Service")}


def test_web_runs_composes_command_with_the_projects_probes_on_3000() -> None:
    [(web, container)] = _running(["gunicorn"])
    assert _command(container) == _compose_command("web")
    assert _command(container)[_command(container).index("--bind") + 1].endswith(":3000")
    assert [p["containerPort"] for p in container["ports"]] == [3000]
    allowed = _named("ConfigMap", "job-queue-coordinator-config")["data"][
        "DJANGO_ALLOWED_HOSTS"].split(",")
    for kind, view in (("livenessProbe", probes.liveness_view),
                       ("readinessProbe", probes.readiness_view)):
        get = container[kind]["httpGet"]
        assert get["port"] == 3000 and resolve(get["path"]).func is view, kind
        # The kubelet's default Host is the pod IP, which Django refuses.
        hosts = [h["value"] for h in get.get("httpHeaders", []) if h["name"].lower() == "host"]
        assert hosts and validate_host(hosts[0], allowed), kind
    with override_settings(ALLOWED_HOSTS=allowed):
        response = Client().get(container["livenessProbe"]["httpGet"]["path"],
                                headers={"host": hosts[0]})
    assert response.status_code == 200
    assert web["spec"]["replicas"] == 2
    [service] = [s for s in _of("Service") if s["spec"]["selector"].items()
                 <= web["spec"]["template"]["metadata"]["labels"].items()]
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(3000, 3000)]
    assert validate_host(service["metadata"]["name"], allowed)


def test_one_worker_deployment_per_builtin_queue_type_as_compose_runs_it() -> None:
    workers = _workers()
    assert sorted(workers) == sorted(BUILTIN)
    compose = {cmd[cmd.index("-Q") + 1]: cmd for cmd in map(_compose_command, SERVICES)
               if cmd[:4] == [*CELERY, "worker"]}
    for queue, (doc, container) in workers.items():
        assert doc["kind"] == "Deployment"
        assert _command(container) == compose[queue], queue
        assert doc["spec"]["replicas"] == BUILTIN[queue]["min_workers"], queue
        # Warm shutdown: longer than the kubelet's default 30 s before SIGKILL.
        assert _pod(doc)["terminationGracePeriodSeconds"] > 30, queue


def test_worker_probes_are_the_ones_workers_probe_serves() -> None:
    handler = inspect.getsource(probe._Handler.do_GET)
    stuck_after_s = project_settings.COORDINATOR_WORKER_STUCK_AFTER / 1000
    for queue, (_doc, container) in _workers().items():
        env = {item["name"]: item.get("value") for item in container.get("env", [])}
        port = int(env["WORKER_PROBE_PORT"])
        assert port in [p["containerPort"] for p in container["ports"]], queue
        for kind, path in (("startupProbe", "/health"), ("livenessProbe", "/ready")):
            get = container[kind]["httpGet"]
            assert (get["path"], get["port"]) == (path, port), (queue, kind)
            assert f'self.path == "{path}"' in handler, path
        live = container["livenessProbe"]
        # Generous: a restart follows a worker stuck for longer than a blip.
        assert live["periodSeconds"] * live["failureThreshold"] >= stuck_after_s, queue


def test_exactly_one_beat_recreated_with_composes_command() -> None:
    beats = _running([*CELERY, "beat"])
    assert len(beats) == 1
    [(doc, container)] = beats
    assert doc["kind"] == "Deployment" and doc["spec"]["replicas"] == 1
    assert doc["spec"]["strategy"] == {"type": "Recreate"}
    assert _command(container) == _compose_command("beat")
    # No -S on the command line: the project's setting picks the scheduler.
    module, attr = project_settings.CELERY_BEAT_SCHEDULER.split(":")
    assert issubclass(getattr(importlib.import_module(module), attr), DatabaseScheduler)


def test_flower_and_migrate_run_composes_commands() -> None:
    [(_flower, container)] = _running([*CELERY, "flower"])
    assert _command(container) == _compose_command("flower")
    assert [p["containerPort"] for p in container["ports"]] == [5555]
    path = container["livenessProbe"]["httpGet"]["path"]
    assert (path, Healthcheck) in [tuple(h[:2]) for h in flower_handlers if isinstance(h, tuple)]
    assert not hasattr(Healthcheck.get, "__wrapped__")  # no login (tornado's @authenticated)
    assert "FLOWER_BASIC_AUTH" in _env_names(container)
    [(job, migrate)] = _running(["python", "manage.py", "migrate"])
    assert job["kind"] == "Job" and _command(migrate) == _compose_command("migrate")


def _metric_names() -> set[str]:
    names = set()
    for family in metrics.CoordinatorCollector().describe():
        names.add(family.name)
        if family.type == "counter":  # exposed with the _total suffix
            names.add(f"{family.name}_total")
    return names


def _prometheus_service_urls() -> set[tuple[str, int]]:
    service = _named("Service", "prometheus")
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    hosts = {name, f"{name}.{namespace}", f"{name}.{namespace}.svc",
             f"{name}.{namespace}.svc.cluster.local"}
    return {(host, port["port"]) for host in hosts for port in service["spec"]["ports"]}


def test_scaled_objects_follow_the_builtin_queue_types_and_exported_metrics() -> None:
    workers = _workers()
    exported, prometheus = _metric_names(), _prometheus_service_urls()
    scaled = _of("ScaledObject")
    assert sorted(s["spec"]["scaleTargetRef"]["name"] for s in scaled) == sorted(
        doc["metadata"]["name"] for doc, _ in workers.values())
    for so in scaled:
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        [(queue, (_doc, container))] = [
            (q, w) for q, w in workers.items()
            if w[0]["metadata"]["name"] == so["spec"]["scaleTargetRef"]["name"]]
        row, cmd = BUILTIN[queue], _command(container)
        assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (
            row["min_workers"], row["max_workers"]), queue
        thresholds = {"queue_desired_processes": cmd[cmd.index("-c") + 1],
                      "queue_jobs_waiting": str(row["scaling_threshold"])}
        for trigger in so["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert trigger["type"] == "prometheus"
            url = urlsplit(meta["serverAddress"])
            assert (url.hostname, url.port) in prometheus, meta["serverAddress"]
            selectors = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", meta["query"])
            assert selectors and {m for m, _ in selectors} <= exported, meta["query"]
            assert all(labels == f'queue="{queue}"' for _, labels in selectors), meta["query"]
            [metric] = {m for m, _ in selectors}
            assert meta["threshold"] == thresholds[metric], (queue, metric)


def test_prometheus_scrapes_the_web_services_metrics() -> None:
    config = yaml.safe_load(_named("ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    [job] = config["scrape_configs"]
    assert resolve(job["metrics_path"]).func is probes.metrics_view
    [(web, _container)] = _running(["gunicorn"])
    web_service = next(s for s in _of("Service") if s["spec"]["selector"].items()
                       <= web["spec"]["template"]["metadata"]["labels"].items())
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    name, port = web_service["metadata"]["name"], web_service["spec"]["ports"][0]["port"]
    assert targets == [f"{name}:{port}"]


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def test_dockerfile_runs_as_a_user_with_a_healthcheck_and_composes_web_command() -> None:
    steps = _dockerfile()
    values = {instruction: args for instruction, args in steps}  # the last of each
    assert values["FROM"] == "python:3.11-slim"
    user = values["USER"].split(":")[0]
    assert user not in {"root", "0"}
    for doc in (d for kind in WORKLOADS for d in _of(kind)
                if _pod(d)["containers"][0]["image"] in APP_IMAGES):
        assert _pod(doc)["securityContext"]["runAsUser"] == int(user), doc["metadata"]["name"]
    url = urlsplit(re.findall(r"http://[^'\"]+", values["HEALTHCHECK"])[0])
    assert url.port == 3000 and resolve(url.path).func is probes.liveness_view
    assert values["EXPOSE"] == "3000"
    assert json.loads(values["CMD"]) == _compose_command("web")
    order = [f"{instruction} {args}" for instruction, args in steps]
    assert order.index("COPY requirements.txt .") < order.index(
        "RUN pip install --no-cache-dir -r requirements.txt") < order.index("COPY . .") < (
        order.index("RUN python manage.py collectstatic --noinput -v0")) < order.index(
        f"USER {values['USER']}")


def test_compose_builds_the_dockerfile_and_replaces_its_healthcheck_off_the_web() -> None:
    for name, service in SERVICES.items():
        if "build" not in service:
            continue
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name
        if name == "web":
            assert "healthcheck" not in service  # the image's own, on port 3000
            continue
        check = service["healthcheck"]
        assert check.get("disable") is True or ":3000" not in " ".join(check["test"]), name
        if "WORKER_PROBE_PORT" in service["environment"]:
            port = service["environment"]["WORKER_PROBE_PORT"]
            assert f"127.0.0.1:{port}/ready" in " ".join(check["test"]), name


def test_dockerignore_keeps_local_state_out_and_the_code_in() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for local in (".venv", ".git", "db.sqlite3", "test-artifacts", ".run", "**/__pycache__"):
        assert local in patterns, local
    for needed in (*RUNTIME_CODE, "requirements.txt"):
        assert not any(fnmatch.fnmatch(needed, pattern) for pattern in patterns), needed
