"""The router over the REST API: the overview and the decisions, for the arena's admins."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Project
from routing import services
from tests.routing.helpers import JUDGE, judged

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(admin_user_of_project) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=admin_user_of_project)
    return client


def test_the_overview_and_the_decisions_over_the_api(api: APIClient, project: Project) -> None:
    overview_url = reverse("api:router", args=[project.slug])
    missing = api.get(overview_url)
    assert missing.status_code == 404 and "no routing policy" in missing.json()["detail"]

    services.routing_policy_set(
        project=project, judge=JUDGE, budget_share=0.5, audit_fraction=0.0, min_batch=1
    )
    judged(project, 2, verdict="tie", consistent=False, p_a=0.5)
    judged(project, 2, p_a=0.9)
    services.comparisons_route(project=project)

    overview = api.get(overview_url).json()
    assert overview["policy"]["judge"] == JUDGE and overview["policy"]["budget_share"] == 0.5
    assert overview["routes"]["human"] == 2 and overview["routes"]["judge"] == 2
    assert overview["human_share"] == 0.5
    assert overview["audit"] == {
        "pairs": 0, "agree": 0, "rate": None, "effective_pairs": None, "interval": None,
        "by_category": [],
    }  # fmt: skip
    assert overview["fit"] is None and overview["weighs_most"] == []

    decisions_url = reverse("api:router-decisions", args=[project.slug])
    human = api.get(decisions_url, {"route": "human"}).json()
    assert human["count"] == 2
    assert {d["judge_verdict"] for d in human["results"]} == {"tie (inconsistent)"}
    first = human["results"][0]
    assert first["reason"] == "priority" and first["features"]["verdict_inconsistent"] == 1.0
    assert api.get(decisions_url, {"reason": "budget"}).json()["count"] == 2
    bad = api.get(decisions_url, {"route": "people"})
    assert bad.status_code == 400
    assert bad.json()["errors"] == {"route": ["must be one of human, judge, both"]}
