"""Strict JSON request bodies for the ops API (ninja's ``Parser`` extension point).

``NinjaAPI(parser=StrictJSONParser())`` parses every body that a view declares:

- a Content-Type other than ``application/json`` (UTF-8) → 415;
- invalid JSON or UTF-8, a duplicate key, ``NaN``/``Infinity``/``-Infinity``
  or a number too large for a float → 400 ``MalformedJSON``;
- nesting too deep for ``json`` itself → 422 naming ``MAX_PAYLOAD_DEPTH``.

What strict JSON still allows but a job may not hold (nesting past the
limit, NUL, unpaired surrogates) the services refuse with a 422 naming the
field, exactly as from Python (``queues.jobs.payload``).

ninja wraps whatever ``parse_body`` raises in ``HttpError(400, "Cannot parse
request body")``; ``coordinator_project.api`` answers from the original
exception (``__cause__``), so the client sees the status and detail set here.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.parser import Parser

from queues.exceptions import JobValidationError
from queues.jobs import payload

# The ``error`` of each status the parser answers with (see coordinator_project.api).
ERROR_NAMES = {400: "MalformedJSON", 415: "UnsupportedMediaType"}
_UTF8 = {"utf-8", "utf8"}


class StrictJSONParser(Parser):
    """ninja's default parser, with ``queues.jobs.payload.loads`` for ``json.loads``."""

    def parse_body(self, request: HttpRequest) -> Any:
        """The body as JSON data.

        Raises:
            HttpError: 415 for a non-JSON Content-Type, 400 for malformed JSON.
            JobValidationError: nested too deeply to parse.
        """
        _require_json(request)
        try:
            data = payload.loads(request.body)
        except RecursionError:
            raise JobValidationError(f"nested more than {payload.MAX_PAYLOAD_DEPTH} levels "
                                     "deep (MAX_PAYLOAD_DEPTH)", field="body") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, payload.loads' own
            raise HttpError(400, f"malformed JSON body: {exc}") from None
        return data


def _require_json(request: HttpRequest) -> None:
    if request.content_type != "application/json":
        given = request.content_type or "none"
        raise HttpError(415, f"Content-Type must be application/json, not {given}")
    charset = (request.content_params or {}).get("charset")
    if charset is not None and charset.lower() not in _UTF8:
        raise HttpError(415, f"application/json bodies are UTF-8, not charset={charset}")
