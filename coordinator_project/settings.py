"""Settings for the Job Queue Coordinator.

This module is the only code in the project that reads ``os.environ``. Every
variable of the design's §11.2 is read here, under its documented name and with
its documented default; ``REDIS_URL`` and ``DATABASE_URL`` override the pieces.
The coordinator's own settings are ``COORDINATOR_*`` and are read lazily through
``queues.conf``; Celery's are ``CELERY_*`` (``config_from_object`` namespace).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else int(raw)


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Django ---------------------------------------------------------------
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = _env_bool("DJANGO_DEBUG", False)
# The seed's scripts call http://job-queue-coordinator:3000; "testserver" is Django's
# test client. Production sets the names its clients use (README, "Production").
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS",
                          "job-queue-coordinator,localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_htmx",
    "queues",
    "workers",
    "deadletter",
    # Only for its management commands (jobqueue, demo): coordinator_project/apps.py.
    "coordinator_project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves admin's static files from gunicorn; no separate web server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",  # request.htmx, for the dashboard
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # ninja answers a wrong method with a plain-text 405; API clients get JSON.
    "coordinator_project.middleware.JSONMethodNotAllowedMiddleware",
]

ROOT_URLCONF = "coordinator_project.urls"
# Admin bulk actions post one field per selected row; the default (1000)
# would refuse a 1,000-row requeue.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20000
WSGI_APPLICATION = "coordinator_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite by default; any Django database through DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=_env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Workers, beat and the web process share one file: wait for a lock
    # instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    test_name = os.environ.get("DATABASE_TEST_NAME")
    if test_name:
        DATABASES["default"]["TEST"] = {"NAME": test_name}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".run" / "static"
# collectstatic (image build, ./dev setup) writes compressed copies that WhiteNoise
# serves; no manifest, so a page never fails for a file collectstatic has not seen.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Until collectstatic has run (a fresh clone started by hand), serve the apps' own
# static files, so admin has its CSS however the web process was started.
WHITENOISE_USE_FINDERS = not STATIC_ROOT.is_dir()

# Structured JSON lines by default (one per event, with queue, job id, job type,
# trace id and worker); LOG_FORMAT=text gives a human-readable line instead.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"job_context": {"()": "queues.logcontext.JobContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(queue)s %(job_id)s "
                   "%(job_type)s %(trace_id)s %(worker)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(queue)s %(job_id)s] "
                           "%(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["job_context"],
                             "formatter": "json" if LOG_FORMAT == "json" else "text"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# --- Redis (seed §11.2) ------------------------------------------------------
REDIS_HOST = os.environ.get("REDIS_HOST", "localhost")
REDIS_PORT = _env_int("REDIS_PORT", 6379)
REDIS_PASSWORD = os.environ.get("REDIS_PASSWORD", "")
REDIS_DB = _env_int("REDIS_DB", 0)
_redis_auth = f":{quote(REDIS_PASSWORD, safe='')}@" if REDIS_PASSWORD else ""
REDIS_URL = os.environ.get("REDIS_URL") or (
    f"redis://{_redis_auth}{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
)
# Redis Sentinel (availability): with REDIS_SENTINELS (host:port, comma-separated) and
# REDIS_SENTINEL_MASTER, every process asks the sentinels for the master (the broker
# through kombu's Sentinel channel, the job store through redis-py's Sentinel) and
# follows a failover; REDIS_URL then gives only the password and database number.
REDIS_SENTINELS = _env_list("REDIS_SENTINELS", "")
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "")
REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD", "")
if REDIS_SENTINELS and not REDIS_SENTINEL_MASTER:
    raise ValueError("REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER is not: name the "
                     "master the sentinels monitor")


def _host_port(item: str) -> tuple[str, int]:
    host, sep, port = item.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"REDIS_SENTINELS: {item!r} is not host:port")
    return host.strip("[]"), int(port)

# --- The coordinator (read through queues.conf) -------------------------------
COORDINATOR_REDIS_URL = REDIS_URL
COORDINATOR_REDIS_SENTINELS = tuple(_host_port(item) for item in REDIS_SENTINELS)
COORDINATOR_REDIS_SENTINEL_MASTER = REDIS_SENTINEL_MASTER
COORDINATOR_REDIS_SENTINEL_PASSWORD = REDIS_SENTINEL_PASSWORD
# "replica": an enqueue returns only once one replica has the job (Redis WAIT), so an
# acknowledged job survives a failover; "primary" (default): once the primary has it.
COORDINATOR_ENQUEUE_DURABILITY = os.environ.get("ENQUEUE_DURABILITY", "primary")
if COORDINATOR_ENQUEUE_DURABILITY not in ("primary", "replica"):
    raise ValueError(f"ENQUEUE_DURABILITY must be 'primary' or 'replica', not "
                     f"{COORDINATOR_ENQUEUE_DURABILITY!r}")
COORDINATOR_ENQUEUE_REPLICA_TIMEOUT = _env_int("ENQUEUE_REPLICA_TIMEOUT", 1000)  # ms
COORDINATOR_REDIS_KEY_PREFIX = os.environ.get("REDIS_KEY_PREFIX", "photo-queue:")
# Job defaults (seed §11.2): the lowest level of option precedence.
COORDINATOR_DEFAULT_JOB_ATTEMPTS = _env_int("DEFAULT_JOB_ATTEMPTS", 3)
COORDINATOR_DEFAULT_JOB_BACKOFF_DELAY = _env_int("DEFAULT_JOB_BACKOFF_DELAY", 2000)
COORDINATOR_DEFAULT_JOB_PRIORITY = _env_int("DEFAULT_JOB_PRIORITY", 0)
# Worker defaults.
COORDINATOR_DEFAULT_WORKER_CONCURRENCY = _env_int("DEFAULT_WORKER_CONCURRENCY", 1)
COORDINATOR_WORKER_STALLED_INTERVAL = _env_int("WORKER_STALLED_INTERVAL", 30000)
COORDINATOR_WORKER_RETRY_PROCESS_DELAY = _env_int("WORKER_RETRY_PROCESS_DELAY", 5000)
# Security.
COORDINATOR_MAX_JOB_DATA_SIZE = _env_int("MAX_JOB_DATA_SIZE", 1048576)
# Request bodies: the job limit plus room for the envelope (name, options), so a
# payload at the limit gets the precise 413 PayloadTooLarge and a bigger body
# a 413 from the request layer.
DATA_UPLOAD_MAX_MEMORY_SIZE = COORDINATOR_MAX_JOB_DATA_SIZE + 64 * 1024
COORDINATOR_MAX_JOB_AGE = _env_int("MAX_JOB_AGE", 3600000)
COORDINATOR_ENABLE_RATE_LIMITING = _env_bool("ENABLE_RATE_LIMITING", True)
COORDINATOR_MAX_JOBS_PER_MINUTE = _env_int("MAX_JOBS_PER_MINUTE", 1000)
# Monitoring.
COORDINATOR_ENABLE_METRICS_COLLECTION = _env_bool("ENABLE_METRICS_COLLECTION", True)
COORDINATOR_METRICS_COLLECTION_INTERVAL = _env_int("METRICS_COLLECTION_INTERVAL", 30000)
COORDINATOR_ENABLE_HEALTH_CHECKS = _env_bool("ENABLE_HEALTH_CHECKS", True)
COORDINATOR_HEALTH_CHECK_INTERVAL = _env_int("HEALTH_CHECK_INTERVAL", 60000)
# Performance.
COORDINATOR_ENABLE_AUTO_SCALING = _env_bool("ENABLE_AUTO_SCALING", True)
COORDINATOR_AUTO_SCALING_CHECK_INTERVAL = _env_int("AUTO_SCALING_CHECK_INTERVAL", 30000)
COORDINATOR_SCALING_COOLDOWN_PERIOD = _env_int("SCALING_COOLDOWN_PERIOD", 300000)
# Not in the seed: how often a worker writes its presence heartbeat, how long
# the process-local queue-type snapshot lives, and which modules declare jobs.
COORDINATOR_WORKER_HEARTBEAT_INTERVAL = _env_int("WORKER_HEARTBEAT_INTERVAL", 5000)
COORDINATOR_WORKER_STALE_AFTER = _env_int("WORKER_STALE_AFTER", 300000)
COORDINATOR_WORKER_STUCK_AFTER = _env_int("WORKER_STUCK_AFTER", 60000)
# A worker's own /health and /ready on every interface (workers.probe); 0: not served.
COORDINATOR_WORKER_PROBE_PORT = _env_int("WORKER_PROBE_PORT", 0)
COORDINATOR_REGISTRY_REFRESH_INTERVAL = _env_int("REGISTRY_REFRESH_INTERVAL", 5000)
COORDINATOR_JOB_LOG_LIMIT = _env_int("JOB_LOG_LIMIT", 1000)
JOB_MODULES = _env_list("JOB_MODULES", "coordinator_project.sample_jobs")

# --- Celery (CELERY_* namespace) ---------------------------------------------
CELERY_BROKER_URL = REDIS_URL
if REDIS_SENTINELS:  # kombu's Sentinel channel: one sentinel:// URL per sentinel
    CELERY_BROKER_URL = ";".join(
        f"sentinel://{_redis_auth}{host}:{port}/{REDIS_DB}"
        for host, port in COORDINATOR_REDIS_SENTINELS)
# kombu's Redis transport with a safe close after a lost connection and a
# quarantine for fetched items that are not messages (queues/store/transport.py).
# BROKER_TRANSPORT=redis selects kombu's own (to check whether a kombu upgrade
# fixed what queues/store/transport.py patches: tests/e2e/test_broker_faults.py).
CELERY_BROKER_TRANSPORT = os.environ.get("BROKER_TRANSPORT", (
    "queues.store.transport:SentinelTransport" if REDIS_SENTINELS
    else "queues.store.transport:Transport"))
# The job record in Redis is the result store: no Celery result backend.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message per free process, so priorities hold and a pause parks at most
# one message per process (DESIGN §4a).
CELERY_WORKER_PREFETCH_MULTIPLIER = _env_int("WORKER_PREFETCH_MULTIPLIER", 1)
CELERY_WORKER_DISABLE_PREFETCH = _env_bool("WORKER_DISABLE_PREFETCH", True)
CELERY_WORKER_CONCURRENCY = COORDINATOR_DEFAULT_WORKER_CONCURRENCY
# A lost broker connection must not kill running jobs: their redelivered messages are
# no-ops while the job's lock lives (DESIGN §4a), so Celery's guard against running
# an acks_late task twice would only make it run twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Ten levels, 0 runs first (kombu's Redis transport clamps to 0..9).
    "priority_steps": list(range(10)),
    # Broker redelivery is not the recovery path (the stall sweep is); keep
    # it longer than the longest job.
    "visibility_timeout": _env_int("BROKER_VISIBILITY_TIMEOUT", 7200),
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 10,
    "retry_on_timeout": True,
}
if REDIS_SENTINELS:
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
    if REDIS_SENTINEL_PASSWORD:
        CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = {"password": REDIS_SENTINEL_PASSWORD}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2,
}
CELERY_TASK_ROUTES = ("queues.jobs.route",)
CELERY_TASK_CREATE_MISSING_QUEUES = True
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Events cost one publish per job: off unless asked for (the demo and
# docker-compose turn them on for Flower).
CELERY_WORKER_SEND_TASK_EVENTS = _env_bool("CELERY_TASK_EVENTS", False)
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_IMPORTS = JOB_MODULES
# Workers log through Django's LOGGING (JSON lines), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# django-celery-beat's DatabaseScheduler, with coordinator jobs enqueued once per tick.
CELERY_BEAT_SCHEDULER = "queues.ops.beat:CoordinatorScheduler"

# --- Ops API auth (JWT bearer tokens) ------------------------------------------
# HS256 with JWT_SECRET; RS256 when JWT_PUBLIC_KEY (PEM text) is set. Without
# either, every token is refused (401): the API is closed by default.
COORDINATOR_JWT_SECRET = os.environ.get("JWT_SECRET", "")
COORDINATOR_JWT_PUBLIC_KEY = os.environ.get("JWT_PUBLIC_KEY", "")
COORDINATOR_JWT_PRIVATE_KEY = os.environ.get("JWT_PRIVATE_KEY", "")  # for mint_token (RS256)
COORDINATOR_JWT_ISSUER = os.environ.get("JWT_ISSUER", "job-queue-coordinator")
COORDINATOR_JWT_AUDIENCE = os.environ.get("JWT_AUDIENCE", "job-queue-coordinator-api")
COORDINATOR_METRICS_REQUIRE_TOKEN = _env_bool("METRICS_REQUIRE_TOKEN", False)

# --- Flower (read by flowerconfig.py) ----------------------------------------------
# "user:password[,user2:password2]", Flower's own --basic-auth format. Flower does
# not read the Celery app's config, so this is a plain setting; without it (or
# Flower's OAuth, --auth) flowerconfig.py refuses to start Flower.
FLOWER_BASIC_AUTH = _env_list("FLOWER_BASIC_AUTH", "")
