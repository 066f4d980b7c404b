"""The ops HTTP API: each app's router under one NinjaAPI, JWT auth, JSON errors.

OpenAPI at ``/openapi.json`` (docs at ``/docs``), generated from the views.
Coordinator errors map to 4xx/503 JSON bodies naming the problem; a request
that fails validation changes nothing. Bodies are parsed strictly
(``coordinator_project.parser``); errors Django raises outside the views are
JSON too (``coordinator_project.errors``, ``coordinator_project.middleware``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.security import HttpBearer

from coordinator_project.errors import too_large_detail
from coordinator_project.parser import ERROR_NAMES, StrictJSONParser
from deadletter.api import router as deadletter_router
from queues import exceptions as exc
from queues.http import auth
from queues.http.api import router as queues_router
from workers.api import router as workers_router

logger = logging.getLogger("coordinator_project.api")

_Kinds = type[exc.CoordinatorError] | tuple[type[exc.CoordinatorError], ...]
STATUS: list[tuple[_Kinds, int]] = [  # most specific first
    (exc.PayloadTooLarge, 413),
    (exc.JobValidationError, 422),
    (exc.ConfigurationError, 422),
    ((exc.QueueTypeNotFound, exc.JobNotFound, exc.DeadLetterNotFound, exc.WorkerNotFound), 404),
    ((exc.QueueTypeAlreadyRegistered, exc.QueueNotEmpty, exc.InvalidJobState,
      exc.NotRequeueable), 409),
    (exc.RateLimited, 429),
    (exc.BackendUnavailable, 503),
    (exc.CoordinatorError, 400),
]


class JWTBearer(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> auth.Principal | None:
        return auth.verify(token)


api = NinjaAPI(title="Job Queue Coordinator ops API", version="1.0.0", auth=JWTBearer(),
               urls_namespace="ops-api", openapi_url="/openapi.json", docs_url="/docs",
               parser=StrictJSONParser())
api.add_router("", queues_router)
api.add_router("", deadletter_router)
api.add_router("", workers_router)


@api.exception_handler(DatabaseError)
def database_error(request: HttpRequest, error: DatabaseError) -> HttpResponse:
    # The queue-type registry and dead letters live in SQL.
    return api.create_response(request, {"error": "DatabaseUnavailable",
                                         "detail": f"database unreachable: {error}"}, status=503)


@api.exception_handler(exc.CoordinatorError)
def coordinator_error(request: HttpRequest, error: exc.CoordinatorError) -> HttpResponse:
    status = next(code for kinds, code in STATUS if isinstance(error, kinds))
    body: dict[str, Any] = {"error": type(error).__name__, "detail": str(error)}
    field = getattr(error, "field", None)
    if field:
        body["field"] = field
    return api.create_response(request, body, status=status)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    # ninja re-raises what the body parser raised as HttpError(400) "from" it:
    # answer with the parser's own status and detail.
    cause = error.__cause__
    if isinstance(cause, exc.CoordinatorError):
        return coordinator_error(request, cause)
    if isinstance(cause, HttpError) and cause.status_code in ERROR_NAMES:
        return api.create_response(request, {"error": ERROR_NAMES[cause.status_code],
                                             "detail": cause.message},
                                   status=cause.status_code)
    return api.create_response(request, {"detail": str(error)}, status=error.status_code)


@api.exception_handler(RequestDataTooBig)
def request_too_large(request: HttpRequest, error: RequestDataTooBig) -> HttpResponse:
    # Django would log it with a traceback and answer an HTML 400.
    logger.warning("refused a %s-byte body to %s %s: over DATA_UPLOAD_MAX_MEMORY_SIZE",
                   request.META.get("CONTENT_LENGTH"), request.method, request.path)
    return api.create_response(request, {"error": "RequestTooLarge",
                                         "detail": too_large_detail()}, status=413)
