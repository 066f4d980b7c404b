"""HTTP-only concerns of the ops API that no ninja or Django hook covers."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from coordinator_project.errors import is_admin, json_error


class JSONMethodNotAllowedMiddleware:
    """A wrong method on an API path gets a JSON 405 (``Allow`` kept).

    ninja answers it itself, before any exception handler, with a plain-text
    ``HttpResponseNotAllowed``; Django has no ``handler405``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (response.status_code != 405 or is_admin(request)
                or response.get("Content-Type", "").startswith("application/json")):
            return response
        allowed = response.get("Allow", "")
        replaced = json_error(405, "MethodNotAllowed",
                              f"{request.method} is not allowed on {request.path}; "
                              f"allowed: {allowed}")
        replaced["Allow"] = allowed
        return replaced
