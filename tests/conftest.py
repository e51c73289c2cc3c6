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


# The workers of the tests stamp their jobs' heartbeats often and count a job as lost after a
# few silent seconds, so that a killed worker's job is taken over within a test's patience.
WORKER_HEARTBEAT_SECONDS = 0.5
WORKER_STALE_SECONDS = 5.0


@pytest.fixture
def celery_workers(transactional_db: None, settings, tmp_path):
    """Start real `celery worker` processes (`start()`, each a new one) consuming the gpu and
    default queues from Redis, on the test database. Tasks sent from the test go through the
    broker, not eagerly. Every worker started is killed at the end."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid

    from prefarena.celery import app

    broker = os.environ.get("PREFARENA_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PYTHONUNBUFFERED": "1",
        # Retries of an unreachable backend a fraction of a second apart, not 5 s to 40 s.
        "PREFARENA_JOB_RETRY_SECONDS": "0.05",
        "PREFARENA_JOB_HEARTBEAT_SECONDS": str(WORKER_HEARTBEAT_SECONDS),
        "PREFARENA_JOB_STALE_SECONDS": str(WORKER_STALE_SECONDS),
    }
    if app.conf.broker_url != broker:
        # Connection pools are made from the URL the app started with: it must be Redis.
        pytest.fail(
            f"the test process must start with CELERY_BROKER_URL={broker} "
            f"(scripts/test.sh sets it); the app uses {app.conf.broker_url!r}"
        )
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.JOB_HEARTBEAT_SECONDS = WORKER_HEARTBEAT_SECONDS
    settings.JOB_STALE_SECONDS = WORKER_STALE_SECONDS
    with app.connection_for_write() as conn:
        for queue in ("gpu", "default"):
            conn.default_channel.queue_purge(queue)
    started: list[tuple[subprocess.Popen, object]] = []

    def start(**overrides: str) -> subprocess.Popen:
        log_path = tmp_path / f"worker-{len(started)}.log"
        log = log_path.open("w")
        name = f"test-{uuid.uuid4().hex[:8]}@%h"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "prefarena", "worker", "-Q", "gpu,default",
             "-c", "1", "-P", "prefork", "--without-gossip", "--without-mingle", "-l", "info",
             "-n", name],
            env={**env, **overrides}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        started.append((process, log))
        # Generous: a loaded 2-core machine can take a minute to import torch and start.
        deadline = time.monotonic() + 240
        while not app.control.ping(timeout=1.0, destination=[name.replace("%h", _hostname())]):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{log_path.read_text()}")
        process.log_path = log_path  # type: ignore[attr-defined]
        return process

    try:
        yield start
    finally:
        for process, log in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            log.close()
        app.conf.task_always_eager = previous


def _hostname() -> str:
    import socket

    return socket.gethostname()


@pytest.fixture
def celery_worker_process(celery_workers):
    """One real `celery worker` process (see `celery_workers`)."""
    return celery_workers()
