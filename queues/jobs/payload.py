"""The strict JSON rules every job payload follows, at every door (DESIGN §8.18).

``enqueue``/``enqueue_many``, ``.delay()``/``.apply_async()``, the adoption of a
message sent around the coordinator, and the ops API all end in ``check``:

- only JSON types: dict (str keys), list/tuple, str, int, bool, None and
  finite floats — no NaN, Infinity or -Infinity, before or after a schema;
- at most ``MAX_PAYLOAD_DEPTH`` nested objects/arrays; the payload object
  itself is level 1, so ``{"a": {"b": 1}}`` is 2 levels deep;
- no string (key or value) with a NUL character or an unpaired surrogate:
  PostgreSQL text/jsonb cannot store either, so the job's dead letter could
  never be written. What cannot be read back or written to SQL is never accepted.

One recursive walk, no JSON round trip: it runs on the enqueue hot path.
``loads`` parses JSON text strictly (the ops API's bodies; the CLI's JSON
arguments): no duplicate keys, no ``NaN``/``Infinity``, no out-of-range numbers.
"""

from __future__ import annotations

import json
import math
from typing import Any

from queues.exceptions import JobValidationError

MAX_PAYLOAD_DEPTH = 32  # objects/arrays nested in each other; the payload itself is level 1

_NUL = "\x00"


def check(value: Any, field: str = "data") -> None:
    """Refuse ``value`` unless it is strict JSON within the depth limit.

    Raises:
        JobValidationError: naming the first offending field (``data.a.0.b``).
    """
    _member(value, field, 0)


def loads(text: str | bytes) -> Any:
    """JSON text as data, refusing what ``json.loads`` lets through but JSON forbids.

    Raises:
        ValueError: malformed JSON or UTF-8, a duplicate key, ``NaN``/``Infinity``,
            a number out of range (the message says which).
        RecursionError: nesting too deep for the parser itself.
    """
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                      parse_float=_finite_float)


def _container(value: Any, path: str, depth: int) -> None:
    if depth > MAX_PAYLOAD_DEPTH:
        raise JobValidationError(
            f"nested more than {MAX_PAYLOAD_DEPTH} levels deep (MAX_PAYLOAD_DEPTH; "
            "the payload object is level 1)", field=path)
    if isinstance(value, dict):
        for key, item in value.items():
            # Plain ASCII keys are nearly all of them: test those inline.
            if not (type(key) is str and key.isascii() and _NUL not in key):
                _check_key(key, path)
            _member(item, f"{path}.{key}", depth)
    else:
        for index, item in enumerate(value):
            _member(item, f"{path}.{index}", depth)


def _member(item: Any, path: str, depth: int) -> None:
    """Check one value found at ``path`` inside a container at ``depth``."""
    kind = type(item)
    if kind is int or kind is bool or item is None:
        return
    if kind is str:
        if not item.isascii() or _NUL in item:
            _check_text(item, path)
    elif kind is float:
        if not math.isfinite(item):
            raise JobValidationError(f"{item} is not a finite number (JSON has no NaN or "
                                     "Infinity)", field=path)
    elif kind is dict or kind is list or kind is tuple:
        _container(item, path, depth + 1)
    else:
        _subclass(item, path, depth)


def _subclass(item: Any, path: str, depth: int) -> None:
    # Subclasses of the JSON types (StrEnum, IntEnum, OrderedDict) encode as their base.
    if isinstance(item, str):
        _check_text(item, path)
    elif isinstance(item, float):
        _member(float(item), path, depth)
    elif isinstance(item, (dict, list, tuple)):
        _container(item, path, depth + 1)
    elif not isinstance(item, int):
        raise JobValidationError(f"{type(item).__name__} is not JSON-serialisable", field=path)


def _check_key(key: Any, path: str) -> None:
    if not isinstance(key, str):
        raise JobValidationError(f"keys must be strings, not {type(key).__name__} ({key!r})",
                                 field=path)
    _check_text(key, f"{path}.{ascii(key)[1:-1]}")


def _check_text(text: str, path: str) -> None:
    """Refuse a string that PostgreSQL text/jsonb (UTF-8, no NUL) cannot store."""
    if _NUL in text:
        raise JobValidationError("contains a NUL character (\\u0000), which PostgreSQL "
                                 "cannot store", field=path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JobValidationError(
            f"contains an unpaired surrogate at position {exc.start} (not encodable as "
            "UTF-8)", field=path) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # rare: look for the key to name only then
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf
        raise ValueError(f"number {text} is out of range")
    return value
