"""Shared fixtures: the database is the real PostgreSQL, and users in every role."""

from __future__ import annotations

import pytest
from django.db import connection

from annotation.models import Membership, Project
from tests.factories import MembershipFactory, ProjectFactory, UserFactory


@pytest.fixture(autouse=True, scope="session")
def _require_postgresql(django_db_setup: None) -> None:
    # Row locks, SKIP LOCKED and concurrency rules are only meaningful on PostgreSQL.
    if connection.vendor != "postgresql":
        pytest.exit(
            "the tests need PostgreSQL: set "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/prefarena (scripts/test.sh does)",
            returncode=2,
        )


@pytest.fixture
def project(db: None) -> Project:
    return ProjectFactory(slug="demo", title="Demo arena", votes_per_comparison=2)


def _member(project: Project, role: str, username: str):
    return MembershipFactory(project=project, user=UserFactory(username=username), role=role).user


@pytest.fixture
def annotator_user(project: Project):
    return _member(project, Membership.Role.ANNOTATOR, "annotator")


@pytest.fixture
def researcher_user(project: Project):
    return _member(project, Membership.Role.RESEARCHER, "researcher")


@pytest.fixture
def admin_user_of_project(project: Project):
    return _member(project, Membership.Role.ADMIN, "project-admin")


@pytest.fixture
def outsider_user(db: None):
    """A researcher of another project: no rights in `project`."""
    other = ProjectFactory(slug="other", title="Other arena")
    return _member(other, Membership.Role.RESEARCHER, "outsider")
