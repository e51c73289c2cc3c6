"""A routed project end to end: the real judge labels every pair through a real Celery worker
on Redis, the router task (through the broker) splits them within the budget, people vote on
theirs through the web, and each final label comes from the right source."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Comparison, Vote
from models_backend import services as backend_services
from models_backend.models import Job, Judgment
from models_backend.services import DEFAULT_JUDGE
from routing import selectors, services
from routing.models import RouteDecision
from routing.tasks import router_run_task
from tests.factories import ComparisonFactory, ProjectFactory, PromptFactory
from tests.models_backend.test_tasks import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

QUESTIONS = [
    ("What is the capital of France?", "Paris.", "I am not sure, maybe Lyon."),
    ("What is 2 + 2?", "4", "5"),
    ("Name a primary colour.", "Red.", "Purple is a primary colour."),
    ("Is water wet?", "Yes, it makes things wet.", "Water is a kind of rock."),
    ("Who wrote Hamlet?", "William Shakespeare.", "Charles Dickens."),
    ("What is the opposite of hot?", "Cold.", "Warm."),
]
TOKEN = re.compile(r'name="assignment" value="([0-9a-f-]{36})"')


def test_a_routed_project_gets_judge_and_human_labels_from_the_right_sources(
    celery_worker_process,
) -> None:
    project = ProjectFactory(votes_per_comparison=1, gold_rate=0.0)
    for question, good, bad in QUESTIONS:
        prompt = PromptFactory(project=project, turns=[question])
        ComparisonFactory(
            project=project,
            prompt=prompt,
            candidate_a__responses=[good],
            candidate_b__responses=[bad],
        )
    services.routing_policy_set(
        project=project, judge=DEFAULT_JUDGE, budget_share=0.5, audit_fraction=0.2, min_batch=6
    )
    assert set(Comparison.objects.values_list("route", flat=True)) == {"pending"}
    voter = Client()
    arena = reverse("annotation:arena", args=[project.slug])
    assert not TOKEN.search(voter.get(arena).content.decode())  # nothing for humans yet

    # The judge reads the pending pairs, on the gpu queue of the real worker.
    job = backend_services.judge_job_create(project=project, batch_size=3)
    wait_for(job, lambda j: j.is_finished)
    assert job.status == Job.Status.DONE, job.error
    assert Judgment.objects.filter(comparison__project=project).count() == 6

    # The router runs as a task through the broker.
    router_run_task.delay(project_pk=project.pk)
    deadline = time.monotonic() + 120
    while RouteDecision.objects.filter(comparison__project=project).count() < 6:
        assert time.monotonic() < deadline, celery_worker_process.log_path.read_text()[-3000:]
        time.sleep(0.2)
    routes = dict(Comparison.objects.values_list("pk", "route"))
    to_humans = {pk for pk, route in routes.items() if route in ("human", "both")}
    audited = RouteDecision.objects.filter(reason="audit").count()
    # Half of 6, the audit stream paid from it (a larger audit draw is always kept).
    assert len(to_humans) == max(3, audited)

    # People vote on their share through the web, always for the left answer.
    while match := TOKEN.search(voter.get(arena).content.decode()):
        response = voter.post(
            reverse("annotation:arena-vote", args=[project.slug]),
            {"assignment": match.group(1), "choice": "left"},
        )
        assert response.status_code == 302
    votes = {v.comparison_id: v.winner for v in Vote.objects.all()}
    assert set(votes) == to_humans

    labels = {
        label.comparison_id: label for label in selectors.final_labels(project, DEFAULT_JUDGE)
    }
    verdicts = dict(Judgment.objects.values_list("comparison_id", "verdict"))
    for pk, route in routes.items():
        if route == "judge":
            assert (labels[pk].source, labels[pk].label) == ("judge", verdicts[pk])
        else:
            assert (labels[pk].source, labels[pk].label) == ("human", votes[pk])
