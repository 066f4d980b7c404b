"""Property-based run of the ops API against its own OpenAPI document: no 500s.

schemathesis generates requests (valid and invalid) for every operation in
the document the API serves; each is sent with a token that may do
everything, so validation and service errors are exercised, not just 401s.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from coordinator_project.wsgi import application
from tests.conftest import bearer

schema = schemathesis.openapi.from_wsgi("/openapi.json", application)
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keep_connection")]


@pytest.fixture
def keep_connection() -> Iterator[None]:
    # Requests go straight to the WSGI app; like Django's test client, keep the
    # test's database connection open across them.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(max_examples=50, deadline=None,
                     suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call(headers=bearer("queues:view", "queues:enqueue", "queues:manage"))
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
