"""The strict JSON rules (queues.jobs.payload) on their own: no Redis, no Django request."""

from __future__ import annotations

import enum
from collections import OrderedDict
from typing import Any

import pytest

from queues.exceptions import JobValidationError
from queues.jobs import payload


class Size(enum.IntEnum):
    SMALL = 1


class Colour(enum.StrEnum):
    RED = "red"


class Ratio(float):
    pass


class Plain(enum.Enum):  # no JSON base type: refused
    A = 1


@pytest.mark.parametrize("value", [
    {}, {"a": [1, 2.5, "x", True, None, {"b": []}]}, {"t": (1, 2)},
    {"e": Size.SMALL, "c": Colour.RED, "r": Ratio(0.5)}, OrderedDict(a=1),
    {"emoji": "😀", "accents": "été", "nested": {"k": "東京"}},
], ids=["empty", "json-types", "tuple", "subclasses", "ordered", "non-ascii"])
def test_strict_json_passes(value: Any) -> None:
    payload.check(value)


@pytest.mark.parametrize(("value", "field"), [
    ({"r": Ratio("nan")}, "data.r"),
    ({"c": Plain.A}, "data.c"),
    ({"b": b"bytes"}, "data.b"),
    ({"s": {1, 2}}, "data.s"),
    ({"k": {(1, 2): 0}}, "data.k"),
    ({"l": [0, [0, "\x00"]]}, "data.l.1.1"),
], ids=["nan-subclass", "enum", "bytes", "set", "tuple-key", "nul-in-list"])
def test_everything_else_is_refused_by_field(value: Any, field: str) -> None:
    with pytest.raises(JobValidationError) as refused:
        payload.check(value)
    assert refused.value.field == field


@pytest.mark.parametrize(("text", "why"), [
    ('{"a": 1, "a": 1}', "duplicate key 'a'"),
    ('[NaN]', "NaN is not JSON"),
    ('{"x": -Infinity}', "-Infinity is not JSON"),
    ('[1e999]', "out of range"),
    ('{"a": }', "Expecting value"),
])
def test_loads_refuses_what_json_forbids(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        payload.loads(text)


def test_loads_reads_strict_json() -> None:
    assert payload.loads(b'{"a": [1, 2.5e3, "\\u00e9"], "b": {"a": 1}}') == {
        "a": [1, 2500.0, "é"], "b": {"a": 1}}
