"""Issue 8, "Faults": a smaller run of benchmarks/faults.py, every property asserted.

Under load from simulated annotators the run SIGKILLs the Celery worker in the middle of an
export job, restarts Redis and crashes PostgreSQL, all on private servers it starts for itself
(the shared PostgreSQL and Redis are never touched), with real gunicorn and Celery processes.
"""

from __future__ import annotations

import glob
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from django.test import Client
from django.urls import reverse

from annotation import services
from annotation.models import ExportJob, Project, Vote
from benchmarks import faults
from models_backend.models import GenerationJob
from prefarena.celery import app
from routing import services as routing_services
from tests.factories import (
    AnnotatorFactory,
    AssignmentFactory,
    ComparisonFactory,
    ModelEntryFactory,
)

SMALL = faults.Config(
    annotators=12,
    web_workers=3,
    warmup=3.0,
    settle=2.0,
    redis_down=3.0,
    postgres_down=4.0,
    visibility_timeout=6,
)


def test_a_vote_is_saved_while_redis_is_down(project: Project, settings, caplog) -> None:
    # The live-Elo debounce lives in the Redis cache; nothing listens on this port.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{faults.free_port()}/1",
        }
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    annotator = AnnotatorFactory()
    assignment = AssignmentFactory(
        comparison=ComparisonFactory(project=project), annotator=annotator
    )

    vote = services.vote_submit(annotator=annotator, token=str(assignment.token), choice="left")

    assert Vote.objects.filter(pk=vote.pk, assignment=assignment).exists()
    assert "Redis is unavailable: live Elo refresh" in caplog.text


@contextmanager
def broker_unreachable() -> Iterator[None]:
    """The app's producer pointed at a port nothing listens on, as when Redis is down."""
    # Celery's conf reads Django's settings live, under a layer of explicit changes: restore
    # that layer as it was (writing the old values back would pin them for later tests).
    changes = app.conf.changes
    keys = ("broker_write_url", "task_always_eager")
    saved = {key: changes[key] for key in keys if key in changes}
    pools = (app._pool, app.amqp._producer_pool)
    changes["broker_write_url"] = f"redis://127.0.0.1:{faults.free_port()}/0"
    changes["task_always_eager"] = False
    app._pool = app.amqp._producer_pool = None
    try:
        yield
    finally:
        for key in keys:
            changes.pop(key, None)
        changes.update(saved)
        app._pool, app.amqp._producer_pool = pools


def test_with_the_broker_down_a_job_fails_saying_why_and_no_page_500s(
    project: Project, admin_user_of_project, settings, django_capture_on_commit_callbacks
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client = Client()
    client.force_login(admin_user_of_project)
    model = ModelEntryFactory(
        project=project, backend="transformers", backend_config={"source": "some/model"}
    )
    routing_services.routing_policy_set(project=project, judge="gemma3-270m-judge")
    slug = project.slug
    with broker_unreachable(), django_capture_on_commit_callbacks(execute=True):
        generate = client.post(
            reverse("models_backend:jobs-generate", args=[slug]), {"model": model.pk}
        )
        export = client.post(
            reverse("annotation:exports", args=[slug]),
            {"format": "votes", "file_type": "jsonl", "source": "human"},
        )
        route = client.post(reverse("routing:router-run", args=[slug]), follow=True)
        detect = client.post(reverse("annotation:review-run", args=[slug]), follow=True)
    assert (generate.status_code, export.status_code) == (302, 302)
    for job in (GenerationJob.objects.get(), ExportJob.objects.get()):
        assert job.status == "failed", job
        assert job.error.startswith("Not started: the task queue (broker) could not be reached")
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the app follows the settings again
    assert app.conf.task_always_eager is True
    for page in (route, detect):
        assert page.status_code == 200
        assert "Nothing was started: the task queue (broker) could not be reached" in (
            page.content.decode()
        )


@pytest.fixture(scope="module")
def report() -> faults.Report:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        pytest.skip("the fault run starts its own PostgreSQL: no initdb on this machine")
    if not shutil.which("redis-server"):
        pytest.skip("the fault run starts its own Redis: no redis-server on this machine")
    # In a thread of its own: the run drives its clients with asyncio.run(), and the browser
    # tests' Playwright keeps an event loop running in this thread for the whole session.
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(faults.run, SMALL).result()
    print(result.render())
    return result


@pytest.mark.slow
@pytest.mark.worker
def test_every_acknowledged_vote_is_stored_exactly_once(report: faults.Report) -> None:
    assert report.acknowledged > 0
    assert report.lost == 0
    assert report.duplicated == 0
    # No vote row appears that no client sent, and the per-comparison counters agree.
    assert report.unsent_rows == 0
    assert report.rows >= report.acknowledged
    assert report.counter_mismatches == 0


@pytest.mark.slow
@pytest.mark.worker
def test_database_outage_answers_a_clear_503_and_never_a_500(report: faults.Report) -> None:
    assert report.unavailable_in_outage > 0
    assert report.errors_500 == 0
    assert report.unclear_503 == 0
    assert report.stray_503 == 0
    assert report.no_answer == 0
    assert report.surprises == []


@pytest.mark.slow
@pytest.mark.worker
def test_the_same_gunicorn_serves_votes_again_after_every_fault(report: faults.Report) -> None:
    assert report.gunicorn_survived
    assert [outage.name for outage in report.outages] == ["worker", "redis", "postgresql"]
    for outage in report.outages:
        assert outage.recovered_after is not None, outage.name
    # Voting does not need Redis: votes went on while it was down.
    redis = next(outage for outage in report.outages if outage.name == "redis")
    assert redis.votes_during > 0


@pytest.mark.slow
@pytest.mark.worker
def test_the_worker_gets_back_to_work_after_every_fault(report: faults.Report) -> None:
    for outage in report.outages:
        assert outage.worker_after is not None, outage.name


@pytest.mark.slow
@pytest.mark.worker
def test_an_interrupted_export_is_redone_exactly_once(report: faults.Report) -> None:
    export = report.export
    assert export["status"] == "done"
    assert export["jobs"] == 1
    assert export["rows"] > 0
    assert export["rows"] == export["expected_rows"] == export["file_lines"]
    assert export["files"] == 2  # the data file and its dataset card
    assert export["received"] == 2  # by the killed worker, then redelivered to the new one
    assert export["succeeded"] == 1
    assert report.problems() == []
