"""The router page: the policy form, the figures, the waiting pairs and one decision's why."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Comparison, Project
from models_backend.models import Judgment
from routing import selectors, services, views
from routing.disagreement import DisagreementModel
from routing.models import DisagreementFit, RouteDecision, RoutingPolicy
from tests.factories import (
    ComparisonFactory,
    ModelEntryFactory,
    RouteDecisionFactory,
)
from tests.routing.helpers import JUDGE, judge, judged, judged_on, vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client, admin_user_of_project) -> Client:
    client.force_login(admin_user_of_project)
    return client


POLICY = {
    "enabled": "on",
    "judge": JUDGE,
    "budget_kind": "share",
    "budget_share": "0.5",
    "daily_human_votes": "0",
    "audit_fraction": "0",
    "audit_tilt": "0.4",
    "retrain_every": "20",
    "min_batch": "1",
    "max_wait_minutes": "30",
}


def test_it_saves_a_policy_routes_and_shows_the_waiting_pairs(
    admin_client: Client, project: Project, django_capture_on_commit_callbacks
) -> None:
    page = reverse("routing:router", args=[project.slug])
    leaderboard = reverse("annotation:leaderboard", args=[project.slug])
    assert page in admin_client.get(leaderboard).content.decode()  # admins find the page
    assert b"Routing is off" in admin_client.get(page).content
    response = admin_client.post(reverse("routing:router-policy", args=[project.slug]), POLICY)
    assert response.status_code == 302
    assert RoutingPolicy.objects.get(project=project).audit_tilt == 0.4
    judged(project, 2, p_a=0.95)
    flipped = judged(project, 2, verdict="tie", consistent=False, p_a=0.5)
    # "Route now" queues the task (eager in these tests; a real worker in the end-to-end one).
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("routing:router-run", args=[project.slug]))
    assert set(
        Comparison.objects.filter(project=project, route="human").values_list("pk", flat=True)
    ) == {c.pk for c in flipped}
    body = admin_client.get(page).content.decode()
    assert "Routing ran: " in body and "Routing queued" not in body  # eager: it ran already
    assert "Human share of routed pairs</th><td>0.500" in body
    for comparison in flipped:
        assert reverse("routing:router-decision", args=[project.slug, comparison.pk]) in body
    fragment = admin_client.get(page, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="overview"')


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("budget_share", "1.5", "Human share: Ensure this value is less than or equal to 1.0."),
        (
            "audit_fraction",
            "-0.1",
            "Audit share: Ensure this value is greater than or equal to 0.0.",
        ),
        (
            "audit_tilt",
            "1.01",
            "Audit leaning on risk: Ensure this value is less than or equal to 1.0.",
        ),
        (
            "retrain_every",
            "0",
            "Refit every (labelled pairs): Ensure this value is greater than or equal to 1.",
        ),
        (
            "min_batch",
            "0",
            "Route batches of (judged pairs): Ensure this value is greater than or equal to 1.",
        ),
    ],
)
def test_it_rejects_a_bad_policy_naming_the_box(
    admin_client: Client, project: Project, field: str, value: str, error: str
) -> None:
    response = admin_client.post(
        reverse("routing:router-policy", args=[project.slug]), {**POLICY, field: value}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert error in body
    assert "__all__" not in body and "Constraint" not in body
    assert not RoutingPolicy.objects.exists()


def test_an_audit_larger_than_the_budget_is_saved_with_a_warning(
    admin_client: Client, project: Project
) -> None:
    response = admin_client.post(
        reverse("routing:router-policy", args=[project.slug]),
        {**POLICY, "budget_share": "0.1", "audit_fraction": "0.5"},
        follow=True,
    )
    assert RoutingPolicy.objects.get(project=project).audit_fraction == 0.5
    assert "The audit share is larger than the human share" in response.content.decode()
    response = admin_client.post(
        reverse("routing:router-policy", args=[project.slug]), POLICY, follow=True
    )
    assert "The audit share is larger" not in response.content.decode()


def test_every_policy_box_is_described_by_a_help_text_on_the_page(
    admin_client: Client, project: Project
) -> None:
    """Django points each box with a help text at "<id>_helptext"; the page never rendered
    those, so screen readers were pointed at nothing."""
    page = reverse("routing:router", args=[project.slug])
    body = admin_client.get(page).content.decode()
    assert_every_description_is_on_the_page(body, "id_budget_share_helptext")
    # With errors, Django points each box at "<id>_error" too: the list of errors has them.
    bad = {**POLICY, "judge": "", "budget_share": "2", "daily_human_votes": "-1"}
    response = admin_client.post(reverse("routing:router-policy", args=[project.slug]), bad)
    assert response.status_code == 400
    assert_every_description_is_on_the_page(response.content.decode(), "id_budget_share_error")


def assert_every_description_is_on_the_page(body: str, expected: str) -> None:
    targets = {t for ids in re.findall(r'aria-describedby="([^"]+)"', body) for t in ids.split()}
    assert expected in targets
    for target in targets:
        assert f'id="{target}"' in body, target


def test_an_escalated_decision_shows_the_one_it_replaced(
    admin_client: Client, project: Project
) -> None:
    comparison = judged(project, 1)[0]
    decision = RouteDecisionFactory(comparison=comparison, route="judge", reason="budget")
    decision.remember()
    decision.route, decision.reason = "human", "escalate"
    decision.save()
    url = reverse("routing:router-decision", args=[project.slug, comparison.pk])
    body = admin_client.get(url).content.decode()
    earlier = body[body.index('id="earlier"') : body.index("This decision")]
    assert "Below the budget&#x27;s cut: the judge labels it" in earlier
    assert "<td>judge</td>" in earlier and "the cold-start rule" in earlier
    assert "Why comparison" in body and "went to human" in body


def test_with_routing_off_the_page_says_so_and_routes_nothing(
    admin_client: Client, project: Project, django_capture_on_commit_callbacks
) -> None:
    page = reverse("routing:router", args=[project.slug])
    run = reverse("routing:router-run", args=[project.slug])
    admin_client.post(reverse("routing:router-policy", args=[project.slug]), POLICY)
    assert run in admin_client.get(page).content.decode()
    off = {key: value for key, value in POLICY.items() if key != "enabled"}
    admin_client.post(reverse("routing:router-policy", args=[project.slug]), off)
    assert not RoutingPolicy.objects.get(project=project).enabled
    judged(project, 3)
    body = admin_client.get(page).content.decode()
    assert 'id="routing-off"' in body and run not in body
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(run, follow=True)
    assert not callbacks
    assert "Routing is off: tick" in response.content.decode()
    assert not RouteDecision.objects.exists()


def test_the_waiting_list_says_how_many_it_leaves_out(
    admin_client: Client, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_client.post(reverse("routing:router-policy", args=[project.slug]), POLICY)
    for comparison in judged(project, 4):
        comparison.route = "human"
        comparison.save(update_fields=["route"])
        RouteDecisionFactory(comparison=comparison, route="human", judge=JUDGE)
    page = reverse("routing:router", args=[project.slug])
    assert "4 pairs waiting" in admin_client.get(page).content.decode()
    monkeypatch.setattr(views, "WAITING_SHOWN", 3)
    body = admin_client.get(page).content.decode()
    assert "The 3 most valuable of 4 pairs waiting" in body
    assert body.count("/router/decisions/") == 3


def test_a_decision_page_explains_the_route_and_escapes_the_prompt(
    admin_client: Client, project: Project
) -> None:
    (comparison,) = judged(project, 1)
    comparison.prompt.turns = ["<script>alert(1)</script> which is better?"]
    comparison.prompt.save()
    RouteDecisionFactory(
        comparison=comparison,
        route="human",
        p_disagree=0.61,
        judge=JUDGE,
        judge_verdict="tie (inconsistent)",
        features={"answers_cosine": 0.3, "margin": 0.02, "verdict_inconsistent": 1.0},
    )
    body = admin_client.get(
        reverse("routing:router-decision", args=[project.slug, comparison.pk])
    ).content.decode()
    assert "0.6100" in body and "verdict_inconsistent" in body
    assert f"{JUDGE}: flipped when the answers were swapped (counts as a tie)" in body
    # The cold-start rule decided: what it reads comes first, and there is no breakdown.
    assert "cold-start rule decided" in body and "Pushed towards" not in body
    assert body.index("verdict_inconsistent") < body.index("answers_cosine")
    assert "<script>alert(1)" not in body and "&lt;script&gt;" in body


def test_a_decision_page_shows_what_pushed_the_pair_to_people(
    admin_client: Client, project: Project
) -> None:
    (comparison,) = judged(project, 1)
    model = DisagreementModel(
        names=("margin", "verdict_inconsistent"),
        mean=np.array([0.5, 0.2]),
        scale=np.array([0.25, 0.4]),
        coef=np.array([-0.5, 1.2]),
        intercept=-1.0,
        l2=1.0,
    )
    fit = DisagreementFit.objects.create(
        project=project, judge=JUDGE, kind=DisagreementFit.Kind.LOGISTIC,
        params=model.to_params(), labelled=80, judge_wrong=20,
    )  # fmt: skip
    decision = RouteDecisionFactory(
        comparison=comparison, route="human", judge=JUDGE, fit=fit,
        features={"margin": 0.02, "verdict_inconsistent": 1.0},
    )  # fmt: skip
    url = reverse("routing:router-decision", args=[project.slug, comparison.pk])
    body = admin_client.get(url).content.decode()
    # 1.2 x (1.0 - 0.2) / 0.4 = 2.4 for the flip, then -0.5 x (0.02 - 0.5) / 0.25 = 0.96.
    flip, margin = body.index("people +2.400"), body.index("people +0.960")
    assert body.index("verdict_inconsistent") < flip < body.index("margin") < margin
    assert "flipped when the answers were swapped" in body
    # The router page says what the current fit weighs most, heaviest first.
    services.routing_policy_set(project=project, judge=JUDGE)
    page = admin_client.get(reverse("routing:router", args=[project.slug])).content.decode()
    weights = page[page.index('id="weights"') :]
    assert weights.index("people +1.200") < weights.index("judge -0.500")
    # A fit of other features explains nothing rather than something wrong.
    decision.features = {"margin": 0.02, "answers_cosine": 0.4}
    decision.save()
    body = admin_client.get(url).content.decode()
    assert "people +" not in body and "word-count similarity" in body
    assert "fitted on other features" in body


def all_audited(project: Project, n: int, categories: tuple[str, ...] = ()) -> list[Comparison]:
    """`n` judged comparisons, every one routed to the audit stream; the first ones in
    `categories`."""
    services.routing_policy_set(
        project=project, judge=JUDGE, budget_share=1.0, audit_fraction=1.0, min_batch=1
    )
    comparisons = judged(project, n)
    for comparison, category in zip(comparisons, categories, strict=False):
        comparison.prompt.category = category
        comparison.prompt.save()
    services.comparisons_route(project=project)
    return comparisons


def test_the_router_page_shows_agreement_by_category(
    admin_client: Client, project: Project
) -> None:
    comparisons = all_audited(project, 4, categories=("math", "math"))
    winners = ["model_b", "model_a", "model_a", "model_a"]  # the judge said model_a on all
    for comparison, winner in zip(comparisons, winners, strict=True):
        vote(comparison, [winner] * 3)
    page = admin_client.get(reverse("routing:router", args=[project.slug])).content.decode()
    table = page[page.index('id="audit-categories"') :]
    assert table.index("math") < table.index("writing")  # the least trusted first
    assert "0.500" in table and "1.000" in table


def test_a_decision_page_shows_the_judge_at_the_conversations_other_turns(
    admin_client: Client, project: Project
) -> None:
    x, y = ModelEntryFactory(project=project), ModelEntryFactory(project=project)
    opening = "Plan a trip."
    # Turn 1, sides the other way round: the judge preferred x.
    first = judged_on(project, [opening], y, x, "model_b")
    RouteDecisionFactory(comparison=first, route="judge", judge=JUDGE)
    # Turn 2, decided: x is answer A here and the judge now prefers y.
    second = judged_on(project, [opening, "Shorter <i>please</i>."], x, y, "model_b")
    RouteDecisionFactory(comparison=second, route="human", judge=JUDGE)
    # Neither another conversation nor the same prompt in the other order is another turn.
    judged_on(project, ["Something else."], x, y, "model_a")
    # Nor is a copy of the decided prompt (the same turns imported again).
    judged_on(project, [opening, "Shorter <i>please</i>."], y, x, "model_a")
    mirrored = ComparisonFactory(
        project=project,
        prompt=second.prompt,
        candidate_a=second.candidate_b,
        candidate_b=second.candidate_a,
    )
    judge(mirrored, "model_a")
    # A third turn the judge flipped on, not routed yet.
    third = judged_on(project, [opening, "Shorter.", "In French."], x, y, "tie", consistent=False)
    url = reverse("routing:router-decision", args=[project.slug, second.pk])
    body = admin_client.get(url).content.decode()
    table = body[body.index('id="other-turns"') : body.index("</table>", body.index("other-turns"))]
    rows = table.split("<tr>")[2:]
    assert len(rows) == 2
    first_url = reverse("routing:router-decision", args=[project.slug, first.pk])
    assert f'href="{first_url}"' in rows[0] and "this pair's answer A" in rows[0]
    assert f">{third.pk}<" in rows[1] and "flipped with the order" in rows[1]
    assert "<i>please</i>" not in body and "&lt;i&gt;please&lt;/i&gt;" in body


def test_the_router_page_says_when_the_audit_is_weighted(
    admin_client: Client, project: Project
) -> None:
    comparisons = all_audited(project, 4)
    for comparison in comparisons:
        vote(comparison, ["model_a"] * 3)
    page = reverse("routing:router", args=[project.slug])
    assert "weighted by 1 / its chance" not in admin_client.get(page).content.decode()
    chances = [1.0, 1.0, 0.5, 0.25]
    for comparison, chance in zip(comparisons, chances, strict=True):
        RouteDecision.objects.filter(comparison=comparison).update(audit_chance=chance)
    body = admin_client.get(page).content.decode()
    # Weights 1, 1, 2, 4: as precise as 64 / 22 = 2.9 uniform pairs.
    assert "each pair weighted by 1 / its chance of an audit, as precise as 3 uniform" in body


def test_before_a_policy_the_form_offers_the_judge_with_the_most_verdicts(
    admin_client: Client, project: Project
) -> None:
    page = reverse("routing:router", args=[project.slug])
    default = RoutingPolicy._meta.get_field("judge").default
    assert f'value="{default}"' in admin_client.get(page).content.decode()
    judged(project, 3)
    Judgment.objects.create(
        comparison=ComparisonFactory(project=project), judge="another-judge", verdict="tie",
        p_a=0.3, p_b=0.3, p_tie=0.4, consistent=True,
    )  # fmt: skip
    assert f'name="judge" value="{JUDGE}"' in admin_client.get(page).content.decode()


def test_a_researcher_is_told_the_router_is_for_admins(
    client: Client, project: Project, researcher_user
) -> None:
    client.force_login(researcher_user)
    for url in (
        reverse("routing:router", args=[project.slug]),
        reverse("api:router", args=[project.slug]),
    ):
        response = client.get(url)
        assert response.status_code == 403
        assert "Only admins of this arena may see this." in response.content.decode()


def test_saving_a_judge_without_verdicts_warns_that_nothing_will_be_routed(
    admin_client: Client, project: Project
) -> None:
    save = reverse("routing:router-policy", args=[project.slug])
    response = admin_client.post(save, {**POLICY, "judge": "no-such-judge"}, follow=True)
    assert "No comparison of this arena has a verdict from “no-such-judge”" in (
        response.content.decode()
    )
    judged(project, 1)
    response = admin_client.post(save, POLICY, follow=True)
    assert "No comparison of this arena has a verdict" not in response.content.decode()


def test_switching_the_judge_says_that_routed_pairs_keep_their_labels(
    admin_client: Client, project: Project
) -> None:
    save = reverse("routing:router-policy", args=[project.slug])
    admin_client.post(save, POLICY)
    for comparison in judged(project, 3):
        RouteDecisionFactory(comparison=comparison, route="judge", judge=POLICY["judge"])
    same = admin_client.post(save, POLICY, follow=True).content.decode()
    assert "keep its verdicts" not in same
    switched = admin_client.post(save, {**POLICY, "judge": "another-judge"}, follow=True)
    assert (
        f"3 pairs already routed on the verdicts of “{POLICY['judge']}” keep them as their final"
        in switched.content.decode()
    )


def test_a_decision_page_shows_the_pairs_chance_of_an_audit(
    admin_client: Client, project: Project
) -> None:
    audited, routed = judged(project, 2)
    RouteDecisionFactory(
        comparison=audited, route="both", reason="audit", audit_chance=0.08, surely_human=True
    )
    RouteDecisionFactory(comparison=routed, route="judge", audit_chance=0.02, surely_human=False)
    page = reverse("routing:router-decision", args=[project.slug, audited.pk])
    body = admin_client.get(page).content.decode()
    assert "0.0800: drawn; counts as 12.5 pairs" in body
    assert "people label it whatever the audit draws; its audit counts in the judge-human" in body
    page = reverse("routing:router-decision", args=[project.slug, routed.pk])
    body = admin_client.get(page).content.decode()
    assert "0.0200" in body and "drawn" not in body
    assert '<td id="surely-human">no</td>' in body


def test_the_budget_row_says_what_is_allowed_and_what_is_left(
    admin_client: Client, project: Project
) -> None:
    all_audited(project, 4)
    page = admin_client.get(reverse("routing:router", args=[project.slug])).content.decode()
    assert "1.00 of routed pairs: 4 of the 4 routed so far may go to people; 4 did" in page
    services.routing_policy_set(
        project=project, judge=JUDGE, budget_kind="daily", daily_human_votes=5
    )
    page = admin_client.get(reverse("routing:router", args=[project.slug])).content.decode()
    owed = 4 * project.votes_per_comparison
    assert f"5 human votes a day: 0 cast today, {owed} owed to open human pairs" in page
    assert "<strong>0 left today</strong>" in page
    assert "over the budget" in page


def test_an_absurd_policy_number_gets_a_plain_error(admin_client: Client, project: Project) -> None:
    save = reverse("routing:router-policy", args=[project.slug])
    response = admin_client.post(save, {**POLICY, "daily_human_votes": "99999999999999999999"})
    assert response.status_code == 400
    assert "Human votes a day: Ensure this value is less than or equal to 10000000." in (
        response.content.decode()
    )
    assert selectors.policy_for(project) is None  # nothing saved


def test_a_decision_page_names_the_model_the_judge_preferred(
    admin_client: Client, project: Project
) -> None:
    (comparison,) = judged(project, 1)
    RouteDecisionFactory(comparison=comparison, route="judge", judge_verdict="model_b")
    body = admin_client.get(
        reverse("routing:router-decision", args=[project.slug, comparison.pk])
    ).content.decode()
    winner = comparison.candidate_b.model.name
    assert f"{JUDGE}: B ({winner}) is better" in body and "model_b" not in body


def test_an_in_process_server_says_that_only_route_now_routes_and_refits(
    admin_client: Client, project: Project, settings
) -> None:
    services.routing_policy_set(project=project, judge=JUDGE)
    url = reverse("routing:router", args=[project.slug])
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert 'id="in-process"' in admin_client.get(url).content.decode()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert 'id="in-process"' not in admin_client.get(url).content.decode()


def test_a_comparison_the_router_never_decided_gets_a_reason_not_a_bare_404(
    admin_client: Client, project: Project
) -> None:
    pending, served = (
        ComparisonFactory(project=project, route="pending"),
        ComparisonFactory(project=project, route="human"),
    )
    for comparison, reason in (
        (pending, "It waits for the router"),
        (served, "It went to human without the router"),
    ):
        response = admin_client.get(
            reverse("routing:router-decision", args=[project.slug, comparison.pk])
        )
        assert response.status_code == 404 and reason in response.content.decode()
    other = ComparisonFactory()  # another arena's
    response = admin_client.get(reverse("routing:router-decision", args=[project.slug, other.pk]))
    assert response.status_code == 404 and "no routing decision" not in response.content.decode()
    huge = f"/arena/{project.slug}/router/decisions/{'9' * 23}/"  # overflowed the driver: a 500
    assert admin_client.get(huge).status_code == 404
