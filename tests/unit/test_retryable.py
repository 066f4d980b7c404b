"""Seed §7.1's non-retryable errors, matched by class (subclasses too) and by marker."""

from __future__ import annotations

import pytest

from queues import exceptions as exc
from queues.jobs.producer import payload_from_call
from queues.jobs.retry import is_non_retryable


class MyError(Exception):
    pass


class SubValidation(exc.ValidationError):
    pass


@pytest.mark.parametrize("error", [
    exc.ValidationError(), exc.AuthenticationError(), exc.AuthorizationError(),
    exc.NotFoundError(), exc.BadRequestError(), SubValidation(),
    RuntimeError("upstream said INVALID_DATA"), RuntimeError("PERMISSION_DENIED for x"),
])
def test_non_retryable(error: Exception) -> None:
    assert is_non_retryable(error, ())


def test_declared_classes_and_ordinary_errors() -> None:
    assert is_non_retryable(MyError(), (MyError,))
    assert not is_non_retryable(MyError(), ())
    assert not is_non_retryable(TimeoutError("slow"), ())


def test_payload_shapes() -> None:
    assert payload_from_call(({"a": 1},), {}) == {"a": 1}
    assert payload_from_call((), {"a": 1}) == {"a": 1}
    with pytest.raises(exc.JobValidationError, match="one dict"):
        payload_from_call((1, 2), {})


def test_exception_tree_roots_at_coordinator_error() -> None:
    for name in dir(exc):
        obj = getattr(exc, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__ == exc.__name__:
            assert issubclass(obj, exc.CoordinatorError), name
    assert str(exc.QueueTypeNotFound("x")) == "Queue type 'x' is not registered"
    assert str(exc.BackendUnavailable()) == "Redis (the job store and broker) could not be reached."
