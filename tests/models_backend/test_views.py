"""The jobs page: staff only, live progress fragment, starting jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.models import Project
from models_backend.models import GenerationJob, Job, JudgeJob
from routing import services as routing_services
from tests.factories import ComparisonFactory, ModelEntryFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def test_it_is_for_researchers_and_admins_only(
    client: Client, project: Project, annotator_user, outsider_user, researcher_user
) -> None:
    url = reverse("models_backend:jobs", args=[project.slug])
    assert client.get(url).status_code == 403
    for user in (annotator_user, outsider_user):
        client.force_login(user)
        assert client.get(url).status_code == 403
    client.force_login(researcher_user)
    assert client.get(url).status_code == 200


def test_it_polls_while_a_job_runs(client: Client, project: Project, researcher_user) -> None:
    model = ModelEntryFactory(project=project, backend="transformers")
    GenerationJob.objects.create(
        project=project, model=model, settings_hash="x", total=10, completed=4,
        status=Job.Status.RUNNING,
    )  # fmt: skip
    client.force_login(researcher_user)
    fragment = client.get(
        reverse("models_backend:jobs", args=[project.slug]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert fragment.lstrip().startswith('<section id="jobs"')
    assert 'hx-trigger="every 2s"' in fragment
    assert '<progress max="10" value="4">' in fragment


def test_it_says_when_a_running_job_has_lost_its_worker(
    client: Client, project: Project, researcher_user, settings
) -> None:
    settings.JOB_STALE_SECONDS = 300
    model = ModelEntryFactory(project=project, backend="transformers")
    long_ago = timezone.now() - timedelta(minutes=30)
    for silent_for in (timedelta(seconds=20), timedelta(minutes=6)):
        GenerationJob.objects.create(
            project=project, model=model, settings_hash="x", status=Job.Status.RUNNING,
            created_at=long_ago, started_at=long_ago, heartbeat_at=timezone.now() - silent_for,
        )  # fmt: skip
    client.force_login(researcher_user)

    page = client.get(reverse("models_backend:jobs", args=[project.slug])).content.decode()

    assert page.count("no word from its worker since") == 1
    silent = GenerationJob.objects.order_by("heartbeat_at").first()
    assert f"since {timezone.localtime(silent.heartbeat_at):%Y-%m-%d %H:%M:%S}" in page


def test_generating_with_an_imported_model_says_why_not(
    client: Client, project: Project, admin_user_of_project
) -> None:
    model = ModelEntryFactory(project=project)  # imported outputs only
    client.force_login(admin_user_of_project)
    url = reverse("models_backend:jobs-generate", args=[project.slug])
    assert client.get(url).status_code == 405
    response = client.post(url, {"model": model.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "imported outputs only" in response.content.decode()
    assert GenerationJob.objects.count() == 0
    other_projects_model = ModelEntryFactory(backend="transformers")
    response = client.post(url, {"model": other_projects_model.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert GenerationJob.objects.count() == 0


def test_judging_with_nothing_routed_finishes_at_once(
    client: Client, project: Project, admin_user_of_project, django_capture_on_commit_callbacks
) -> None:
    client.force_login(admin_user_of_project)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("models_backend:jobs-judge", args=[project.slug]))
    assert response.status_code == 302
    job = JudgeJob.objects.get()
    assert (job.status, job.total) == (Job.Status.DONE, 0)


def test_judging_runs_the_judge_the_router_reads_or_says_why_it_cannot(
    client: Client, project: Project, admin_user_of_project, django_capture_on_commit_callbacks
) -> None:
    client.force_login(admin_user_of_project)
    url = reverse("models_backend:jobs-judge", args=[project.slug])
    routing_services.routing_policy_set(project=project, judge="gpt-4-imported")
    for headers in ({"HTTP_HX_REQUEST": "true"}, {}):  # with and without JavaScript
        response = client.post(url, **headers)
        assert response.status_code == 400
        assert "reads the judge gpt-4-imported, which never ran here" in response.content.decode()
    assert not JudgeJob.objects.exists()
    # A judge that ran here before runs again, as it ran: its verdicts are the ones routed on.
    spec = {"model": "/models/judge.gguf"}
    JudgeJob.objects.create(project=project, judge="local-judge", judge_spec=spec, total=0)
    routing_services.routing_policy_set(project=project, judge="local-judge")
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(url).status_code == 302
    job = JudgeJob.objects.latest("created_at")
    assert (job.judge, job.judge_spec) == ("local-judge", spec)


@pytest.mark.parametrize("eager", [True, False])
def test_it_warns_that_jobs_run_inside_the_click_without_a_worker(
    client: Client, project: Project, researcher_user, settings, eager: bool
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = eager
    client.force_login(researcher_user)
    body = client.get(reverse("models_backend:jobs", args=[project.slug])).content.decode()
    assert ('id="in-process"' in body) is eager


def test_staff_cancel_a_stuck_job_and_the_router_can_queue_its_judge_again(
    client: Client,
    project: Project,
    researcher_user,
    annotator_user,
    django_capture_on_commit_callbacks,
) -> None:
    spec = {"model": "/models/judge.gguf"}
    stuck = JudgeJob.objects.create(
        project=project, judge="local-judge", judge_spec=spec, total=5, status=Job.Status.RUNNING
    )
    routing_services.routing_policy_set(project=project, judge="local-judge")
    ComparisonFactory(project=project, route="pending")  # waits for the judge
    assert routing_services.pending_judge_job(project=project) is None  # blocked by the stuck
    url = reverse("models_backend:jobs-cancel", args=[project.slug, "judge", stuck.pk])
    client.force_login(annotator_user)
    assert client.post(url).status_code == 403
    client.force_login(researcher_user)
    page = client.get(reverse("models_backend:jobs", args=[project.slug])).content.decode()
    assert f'action="{url}"' in page  # a Cancel button on the unfinished job
    response = client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    stuck.refresh_from_db()
    assert stuck.status == Job.Status.CANCELLED
    assert stuck.error == f"Cancelled by {researcher_user.get_username()}."
    assert f'action="{url}"' not in response.content.decode()
    assert client.post(url).status_code == 302  # already cancelled: nothing changes
    with django_capture_on_commit_callbacks(execute=False):
        assert routing_services.pending_judge_job(project=project) is not None
    # Another project's job, or an unknown kind, is not found.
    other = JudgeJob.objects.create(project=ProjectFactory(), judge="j", judge_spec=spec)
    other_url = reverse("models_backend:jobs-cancel", args=[project.slug, "judge", other.pk])
    assert client.post(other_url).status_code == 404
    bad_kind = reverse("models_backend:jobs-cancel", args=[project.slug, "export", stuck.pk])
    assert client.post(bad_kind).status_code == 404
    other.refresh_from_db()
    assert other.status == Job.Status.QUEUED
