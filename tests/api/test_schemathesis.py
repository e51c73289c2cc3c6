"""Property-based tests of the whole API against its own OpenAPI schema (schemathesis).

Every documented operation is called with generated inputs, as a project admin (who may call
all of them) on a project with data, in-process over WSGI. The checks: no 5xx, status codes
and content types the schema documents, and bodies that match the documented schemas.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from annotation.models import Project
from models_backend.models import Judgment
from tests.factories import ComparisonFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The schema view needs no database; the schema is read once, when the module is collected.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())


@pytest.fixture
def keep_connection(db: None):
    """As Django's test client does: requests must not close the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def admin_headers(project: Project, admin_user_of_project) -> dict[str, str]:
    comparisons = ComparisonFactory.create_batch(3, project=project)
    Judgment.objects.create(
        comparison=comparisons[0],
        judge="judge",
        verdict="model_a",
        p_a=0.6,
        p_b=0.3,
        p_tie=0.1,
        consistent=True,
    )
    token, _ = Token.objects.get_or_create(user=admin_user_of_project)
    return {"Authorization": f"Token {token.key}"}


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.usefixtures("keep_connection")
def test_the_api_keeps_its_schema(case, admin_headers: dict[str, str], project: Project) -> None:
    if case.path_parameters and "slug" in case.path_parameters:
        # Mostly the real project, so calls reach past the 404 into the views' logic.
        case.path_parameters["slug"] = project.slug
    case.call_and_validate(headers=admin_headers, checks=CHECKS)
