"""Property-based conformance: schemathesis drives every operation of /api/schema/ against the app.

For a bounded number of generated requests per operation (valid ones with the caller's real
businessId and productId, and whatever else hypothesis invents), no answer is a 5xx and no answer
breaks the schema documented for its status. Runs in process through the WSGI app, inside the test
database, with a real API key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ingestion.workspaces import CreatedWorkspace

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


# Loaded at collection: django is set up by then, and building the schema touches no database.
# (schemathesis.pytest.from_fixture, the lazy loader, does not work with pytest 9.)
# The coverage phase alone sends ~1,000 requests to the batch operation; fuzzing (bounded by
# max-examples, positive and negative) plus the documented examples keep the run near a minute.
CONFIG = SchemathesisConfig.from_dict({
    "seed": 4242,
    "phases": {"coverage": {"enabled": False}},
    "generation": {"max-examples": EXAMPLES_PER_OPERATION, "mode": "all"},
})
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), config=CONFIG)


def _aim(body: Any, tenant: CreatedWorkspace) -> None:
    """Give generated bodies the caller's own businessId and productId, so requests get past the
    tenancy checks (403/404) and exercise validation and the services behind them."""
    if isinstance(body, dict):
        if "businessId" in body:
            body["businessId"] = tenant.workspace.id
        if isinstance(body.get("productId"), str):
            body["productId"] = tenant.product.id
        for item in body.get("events") or [] if isinstance(body.get("events"), list) else []:
            _aim(item, tenant)


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """Stop the raw WSGI handler from closing the test's database connection after each request.

    Django's handler closes a connection whose autocommit differs from its settings when a request
    starts or finishes, and inside the test's transaction it always does; on PostgreSQL the next
    query then fails (OperationalError, answered 503). Django's own test client disconnects the same
    receivers around each request; this does it for the whole test.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_its_schema(case: Any, tenant: CreatedWorkspace,
                                                keep_test_connection: None) -> None:
    """No 5xx, and every response matches the documented status, content type and schema."""
    _aim(case.body, tenant)
    case.call_and_validate(headers={"Authorization": f"Bearer {tenant.api_key.secret}"}, checks=CHECKS)
