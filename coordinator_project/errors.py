"""JSON answers for the errors Django produces outside the ops API's views.

Django's own 400 and 404 pages are HTML. ``urls.py`` points ``handler400``
and ``handler404`` here: a path that no URL pattern matches, a Host not in
ALLOWED_HOSTS (``DisallowedHost``) or an oversized body read outside ninja gets
a JSON body ``{"error", "detail"}`` like every other ops-API error. Admin
pages keep Django's HTML.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

ADMIN_PREFIX = "/admin/"
# SuspiciousOperation subclasses whose message only restates the request;
# any other keeps Django's reticence (no detail).
_EXPLAINED = (DisallowedHost, TooManyFieldsSent, TooManyFilesSent)


def is_admin(request: HttpRequest) -> bool:
    """Whether ``request`` is for Django admin, whose errors stay HTML pages."""
    return request.path_info.startswith(ADMIN_PREFIX)


def json_error(status: int, error: str, detail: str) -> JsonResponse:
    """The ops API's error body, ``{"error": ..., "detail": ...}``, with ``status``."""
    return JsonResponse({"error": error, "detail": detail}, status=status)


def too_large_detail() -> str:
    """What a client is told about a body over DATA_UPLOAD_MAX_MEMORY_SIZE."""
    return (f"request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes, "
            "the server's limit")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: a SuspiciousOperation raised by Django (Host, body size, fields)."""
    if is_admin(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return json_error(413, "RequestTooLarge", too_large_detail())
    if isinstance(exception, _EXPLAINED):
        return json_error(400, type(exception).__name__, str(exception))
    return json_error(400, "BadRequest", "the request was refused as malformed")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: no URL pattern matches the path."""
    if is_admin(request):
        return defaults.page_not_found(request, exception)
    return json_error(404, "NotFound", f"no endpoint at {request.path}")
