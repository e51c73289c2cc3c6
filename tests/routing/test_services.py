"""The router in the database: policy, budgets, stored decisions, refits and final labels."""

from __future__ import annotations

import importlib
import random
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation import services as annotation_services
from annotation.exports.options import ExportOptions
from annotation.exports.source import stream_pairs
from annotation.models import Annotator, Assignment, Comparison, ModelEntry, Project, Vote
from annotation.selectors import LeaderboardFilters, battle_counts
from models_backend import services as backend_services
from models_backend.models import JudgeJob, Judgment
from models_backend.services import DEFAULT_JUDGE
from routing import selectors, services
from routing.audit import wilson_interval
from routing.features import conversation_of, feature_names
from routing.models import DisagreementFit, RouteDecision, RoutingPolicy
from routing.tasks import router_run_all_task
from tests.factories import (
    CandidateFactory,
    ComparisonFactory,
    ModelEntryFactory,
    PromptFactory,
    RouteDecisionFactory,
)
from tests.routing.helpers import JUDGE, judged, judged_on, vote

pytestmark = pytest.mark.django_db


def policy(project: Project, **fields) -> None:
    fields.setdefault("min_batch", 1)  # route whatever is judged (batching has its own test)
    services.routing_policy_set(project=project, judge=JUDGE, **fields)


def routes(project: Project) -> dict[str, int]:
    return {
        route: Comparison.objects.filter(project=project, route=route).count()
        for route in Comparison.Route.values
    }


def test_enabling_routing_holds_unstarted_pairs_back_from_humans(
    project: Project, client: Client
) -> None:
    started = ComparisonFactory(project=project)
    annotation_services.assignment_next(
        project=project, annotator=Annotator.objects.create(pseudonym="early")
    )
    untouched = ComparisonFactory.create_batch(3, project=project)
    policy(project)
    assert Comparison.objects.get(pk=started.pk).route == "human"
    assert {c.route for c in Comparison.objects.filter(pk__in=[c.pk for c in untouched])} == {
        "pending"
    }
    # New comparisons of a routed project wait for the router as well ...
    prompt = PromptFactory(project=project)
    CandidateFactory.create_batch(2, prompt=prompt)
    annotation_services.comparisons_create_for_prompts(project=project, prompts=[prompt])
    assert Comparison.objects.get(prompt=prompt).route == "pending"
    # ... and nobody is served a pending pair: only the one started before routing.
    for _ in range(3):
        client.get(reverse("annotation:arena", args=[project.slug]))
        served = Assignment.objects.exclude(annotator__pseudonym="early")
        assert {a.comparison_id for a in served} == {started.pk}
        Assignment.objects.filter(pk__in=served).delete()
    # Turning routing off hands them back to humans.
    policy(project, enabled=False)
    assert routes(project)["pending"] == 0


def test_routing_spends_the_share_budget_and_explains_every_decision(project: Project) -> None:
    policy(project, budget_share=0.25, audit_fraction=0.1)
    confident = judged(project, 30, p_a=0.95)
    flipped = judged(project, 10, verdict="tie", consistent=False, p_a=0.5)
    waiting = ComparisonFactory.create_batch(2, project=project, route="pending")  # no verdict

    result = services.comparisons_route(project=project, rng=random.Random(1))

    assert result.routed == 40 and result.waiting_for_judge == 2
    assert result.human + result.both == 10  # 25% of 40, audit stream included
    assert routes(project) == {
        "human": result.human,
        "judge": 30,
        "both": result.both,
        "pending": 2,
    }
    decisions = {d.comparison_id: d for d in RouteDecision.objects.all()}
    assert set(decisions) == {c.pk for c in confident + flipped}
    assert not any(c.pk in decisions for c in waiting)
    # Cold start: every flipped verdict outranks every confident one for the human share.
    human = [d for d in decisions.values() if d.reason == RouteDecision.Reason.PRIORITY]
    assert all(d.judge_verdict == "tie (inconsistent)" for d in human)
    for decision in decisions.values():
        assert decision.route == Comparison.objects.get(pk=decision.comparison_id).route
        assert {"margin", "verdict_inconsistent", "answers_abs_log_ratio"} <= set(decision.features)
        assert decision.fit is None and 0.0 <= decision.p_disagree <= 1.0


def test_a_decision_records_whether_people_label_it_whatever_the_audit_draws(
    project: Project,
) -> None:
    policy(project, budget_share=0.25, audit_fraction=0.1)
    judged(project, 36, p_a=0.95)
    flipped = judged(project, 4, verdict="tie", consistent=False, p_a=0.5)
    services.comparisons_route(project=project, rng=random.Random(2))
    # A budget of 10 less an audit of at most 4 leaves 6 sure places: the four flipped verdicts
    # (cold start ranks them first) take four; the confident ones tie for the other two.
    sure = set(RouteDecision.objects.filter(surely_human=True).values_list("comparison", flat=True))
    assert sure == {c.pk for c in flipped}
    assert set(Comparison.objects.filter(pk__in=sure).values_list("route", flat=True)) <= {
        "human",
        "both",
    }


def test_routing_again_decides_each_pair_once_and_keeps_the_running_share(
    project: Project,
) -> None:
    policy(project, budget_share=0.25, audit_fraction=0.0)
    judged(project, 20)
    first = services.comparisons_route(project=project)
    assert services.comparisons_route(project=project).routed == 0
    judged(project, 20)
    second = services.comparisons_route(project=project)
    assert first.human == 5 and second.human == 5
    assert RouteDecision.objects.filter(route="human").count() == 10


def test_a_daily_budget_pays_for_votes_cast_and_promised_today(project: Project) -> None:
    project.votes_per_comparison = 3
    project.save()
    policy(project, budget_kind="daily", daily_human_votes=10, audit_fraction=0.0)
    judged(project, 12, verdict="tie", consistent=False)
    result = services.comparisons_route(project=project)
    assert result.human == 3  # 10 votes // 3 per pair
    # Those 9 promised votes leave 1: not enough for another pair today.
    judged(project, 5, verdict="tie", consistent=False)
    assert services.comparisons_route(project=project).human == 0
    # The router page says what the day's budget has left, counting promised votes as spent.
    vote(Comparison.objects.filter(project=project, route="human").first(), ["model_a"])
    # Votes imported today were cast elsewhere, some other day: the budget did not pay them.
    (old,) = vote(Comparison.objects.filter(project=project, route="judge").first(), ["model_b"])
    Vote.objects.filter(annotator=old).update(source="import", time_recorded=False)
    overview = selectors.router_overview(project, selectors.policy_for(project))
    assert (overview.human_votes_today, overview.human_votes_promised) == (1, 8)
    assert overview.human_votes_left_today == 1
    assert overview.budget_comparisons is None
    assert (overview.routed_pairs, overview.human_pairs) == (17, 3)


def _labelled_project(project: Project) -> None:
    """60 finished human pairs: the judge is wrong on the flipped verdicts, right otherwise."""
    policy(project, budget_share=1.0, audit_fraction=0.0, retrain_every=10)
    right = judged(project, 40, p_a=0.9)
    wrong = judged(project, 20, verdict="tie", consistent=False, p_a=0.5)
    services.comparisons_route(project=project)
    for comparison in right:
        vote(comparison, ["model_a", "model_a", "model_b"])
    for comparison in wrong:
        vote(comparison, ["model_b", "model_b", "model_b"])


def test_the_disagreement_model_is_refitted_on_pairs_with_both_labels(project: Project) -> None:
    _labelled_project(project)
    fit = services.router_retrain(project=project)
    assert fit is not None and fit.kind == DisagreementFit.Kind.LOGISTIC
    assert (fit.labelled, fit.judge_wrong) == (60, 20)
    assert fit.cv_auroc is not None and fit.cv_auroc > 0.9
    # Not due again until `retrain_every` more pairs have both labels.
    assert services.router_retrain(project=project) is None
    # New pairs are scored by the stored model, and it trusts the consistent verdict.
    judged(project, 4, p_a=0.9)
    judged(project, 4, verdict="tie", consistent=False, p_a=0.5)
    services.comparisons_route(project=project)
    new = RouteDecision.objects.filter(fit=fit)
    assert new.count() == 8
    trusted = new.filter(judge_verdict="model_a").values_list("p_disagree", flat=True)
    doubted = new.filter(judge_verdict="tie (inconsistent)").values_list("p_disagree", flat=True)
    assert max(trusted) < min(doubted)


def test_where_people_call_ties_the_refit_blends_in_the_outcome_view(
    project: Project, client: Client, admin_user_of_project
) -> None:
    policy(project, budget_share=1.0, audit_fraction=0.0, retrain_every=10)
    decisive = judged(project, 80, p_a=0.9)
    flipped = judged(project, 20, verdict="tie", consistent=False, p_a=0.5)
    services.comparisons_route(project=project)
    for i, comparison in enumerate(decisive):
        vote(comparison, [["model_a"], ["model_b"], ["tie"], ["model_a"]][i % 4] * 3)
    for comparison in flipped:
        vote(comparison, ["model_b"] * 3)

    fit = services.router_retrain(project=project)

    assert fit is not None and fit.kind == DisagreementFit.Kind.LOGISTIC
    assert (fit.labelled, fit.judge_wrong) == (100, 60)
    assert set(fit.params["outcome_view"]) == {"weight", "tie", "opposite"}
    assert type(services.scorer_for(fit)).__name__ == "BlendedModel"
    new = judged(project, 1, p_a=0.9)[0]
    services.comparisons_route(project=project)
    decision = RouteDecision.objects.get(comparison=new)
    assert decision.fit == fit
    shown = selectors.decision_explanation(decision)
    assert any(row.contribution is not None for row in shown)
    client.force_login(admin_user_of_project)
    page = client.get(reverse("routing:router-decision", args=[project.slug, new.pk]))
    assert "the direct model's shares, which make half of the score" in page.content.decode()
    router = client.get(reverse("routing:router", args=[project.slug])).content.decode()
    assert "They are the direct model's, half of the score" in router


def test_too_few_labels_keep_the_cold_start_rule(project: Project) -> None:
    policy(project, budget_share=1.0, audit_fraction=0.0, retrain_every=1)
    comparisons = judged(project, 5)
    services.comparisons_route(project=project)
    for comparison in comparisons:
        vote(comparison, ["model_a", "model_a", "model_a"])
    fit = services.router_retrain(project=project)
    assert fit is not None and fit.kind == DisagreementFit.Kind.COLD_START
    assert isinstance(services.scorer_for(fit), type(services.scorer_for(None)))


def test_final_labels_take_humans_where_they_voted_else_the_judge(project: Project) -> None:
    policy(project, budget_share=0.5, audit_fraction=0.0)
    judged(project, 4, verdict="model_b", consistent=False, p_a=0.4)
    judged(project, 4, verdict="model_b", p_a=0.05)
    services.comparisons_route(project=project)
    for comparison in Comparison.objects.filter(project=project, route="human"):
        vote(comparison, ["model_a", "model_a", "tie"])
    labels = {label.comparison_id: label for label in selectors.final_labels(project, JUDGE)}
    for comparison in Comparison.objects.filter(project=project):
        label = labels[comparison.pk]
        if comparison.route == "human":
            assert (label.source, label.label) == ("human", "model_a")
        else:
            assert (label.source, label.label) == ("judge", "model_b")
    # A second judge's verdict does not count twice in the final labels.
    judge_routed = Comparison.objects.filter(project=project, route="judge").first()
    Judgment.objects.create(
        comparison=judge_routed, judge="second-judge", verdict="tie", p_a=0.3, p_b=0.3,
        p_tie=0.4, consistent=True,
    )  # fmt: skip
    # The leaderboard's `final` source counts the same labels: 4 x 3 human votes + 4 verdicts.
    final = battle_counts(project, LeaderboardFilters(source="final"))
    everything = battle_counts(project, LeaderboardFilters(source="all"))
    assert final.total_votes == 16 and everything.total_votes == 21


def test_the_overview_measures_agreement_on_the_audit_stream_only(project: Project) -> None:
    policy(project, budget_share=1.0, audit_fraction=1.0)
    comparisons = judged(project, 10, p_a=0.9)
    for comparison in comparisons[6:]:
        comparison.prompt.category = "math"
        comparison.prompt.save()
    services.comparisons_route(project=project)
    assert RouteDecision.objects.filter(reason="audit").count() == 10
    for comparison in comparisons[:8]:
        vote(comparison, ["model_a"] * 3)
    for comparison in comparisons[8:]:
        vote(comparison, ["model_b"] * 3)
    overview = selectors.router_overview(project, selectors.policy_for(project))
    assert (overview.audit.pairs, overview.audit.agree) == (10, 8)
    low, high = overview.audit.interval
    assert low < 0.8 < high
    # By category, the least trusted first: math 2 of 4, writing 6 of 6.
    math, writing = overview.audit.by_category
    assert (math.category, math.pairs, math.agree) == ("math", 4, 2)
    assert (writing.category, writing.pairs, writing.rate) == ("writing", 6, 1.0)
    assert math.interval[0] < 0.5 < math.interval[1]
    assert overview.human_share == 1.0
    assert overview.final_sources == {"human": 10}
    assert overview.final_accuracy == 1.0


def test_the_route_command_turns_routing_on_and_reports(project: Project) -> None:
    with pytest.raises(CommandError, match="pass --enable"):
        call_command("route", project=project.slug)
    with pytest.raises(CommandError, match="budget-share"):
        call_command("route", project=project.slug, enable=True, budget_share=2.0)
    with pytest.raises(CommandError, match="audit-tilt"):
        call_command("route", project=project.slug, enable=True, audit_tilt=-0.1)
    ComparisonFactory.create_batch(2, project=project)
    out = StringIO()
    call_command("route", project=project.slug, enable=True, judge=JUDGE, format="json", stdout=out)
    assert '"waiting_for_judge": 2' in out.getvalue()
    Comparison.objects.filter(project=project).update(route="human")  # as if started
    judged(project, 4)
    out = StringIO()
    call_command(
        "route",
        project=project.slug,
        budget_share=0.5,
        audit_fraction=0.0,
        audit_tilt=0.3,
        format="json",
        stdout=out,
    )
    assert '"routed": 4' in out.getvalue() and '"human": 2' in out.getvalue()
    assert selectors.policy_for(project).audit_tilt == 0.3
    assert '"escalated": 0' in out.getvalue()  # a share budget has nothing left over


def test_a_second_judge_that_disagrees_sends_the_pair_to_humans_first(project: Project) -> None:
    policy(project, budget_share=0.125, audit_fraction=0.0)
    comparisons = judged(project, 8, p_a=0.95)
    contradicted = comparisons[3]
    Judgment.objects.create(
        comparison=contradicted,
        judge="second-judge",
        verdict="model_b",
        p_a=0.1,
        p_b=0.85,
        p_tie=0.05,
        consistent=True,
    )
    Judgment.objects.create(
        comparison=comparisons[5], judge="second-judge", verdict="model_a", p_a=0.9, p_b=0.05,
        p_tie=0.05, consistent=True,
    )  # fmt: skip
    services.comparisons_route(project=project)
    human = RouteDecision.objects.get(route="human")
    assert human.comparison_id == contradicted.pk  # the one pair of 8 the budget pays for
    assert human.features["other_judges_disagree"] == 1.0
    agreeing = RouteDecision.objects.get(comparison=comparisons[5])
    assert (agreeing.route, agreeing.features["other_judges"]) == ("judge", 1.0)
    assert agreeing.features["other_judges_disagree"] == 0.0


def test_a_project_with_fits_and_decisions_can_be_deleted(project: Project) -> None:
    # (Projects with votes cannot be deleted at all: votes are kept.)
    policy(project)
    services.router_retrain(project=project, force=True)
    judged(project, 2)
    services.comparisons_route(project=project)
    assert RouteDecision.objects.filter(fit__isnull=False).exists()
    project.delete()
    assert not RouteDecision.objects.exists() and not DisagreementFit.objects.exists()


def test_small_batches_wait_for_more_pairs_or_for_time(project: Project) -> None:
    policy(project, budget_share=0.25, audit_fraction=0.0, min_batch=10, max_wait_minutes=30)
    judged(project, 4)
    held = services.comparisons_route(project=project)
    assert (held.routed, held.held) == (0, 4) and "held for a fuller batch" in str(held)
    judged(project, 6)
    assert services.comparisons_route(project=project).routed == 10
    judged(project, 2)
    Judgment.objects.filter(comparison__route="pending").update(
        created_at=timezone.now() - timedelta(minutes=31)
    )
    assert services.comparisons_route(project=project).routed == 2  # waited long enough
    judged(project, 1)
    assert services.comparisons_route(project=project, force=True).routed == 1  # Route now


def test_the_audit_stream_is_drawn_even_when_the_budget_is_spent(project: Project) -> None:
    policy(project, budget_share=0.0, audit_fraction=0.5)
    judged(project, 40)
    result = services.comparisons_route(project=project, rng=random.Random(3))
    assert 10 < result.both < 30 and result.human == 0


def test_a_stale_fit_falls_back_to_the_cold_start_rule(project: Project) -> None:
    policy(project, audit_fraction=0.0)
    DisagreementFit.objects.create(
        project=project,
        judge=JUDGE,
        kind=DisagreementFit.Kind.LOGISTIC,
        params={"names": ["an_old_feature"], "mean": [0], "scale": [1], "coef": [1],
                "intercept": 0, "l2": 1, "judge_penalty_share": 1, "platt": None},
        labelled=100,
        judge_wrong=30,
    )  # fmt: skip
    comparisons = judged(project, 4)
    assert services.comparisons_route(project=project).routed == 4
    assert not RouteDecision.objects.filter(fit__isnull=False).exists()
    # A stale fit is due for a refit at once, not after `retrain_every` (20) new pairs.
    Comparison.objects.filter(pk__in=[c.pk for c in comparisons]).update(route="human")
    for comparison in comparisons:
        vote(comparison, ["model_a", "model_a", "model_b"])
    refit = services.router_retrain(project=project)
    assert refit is not None and refit.labelled == 4
    assert services.router_retrain(project=project) is None  # and then it is current


def test_the_route_command_keeps_a_disabled_policy_off(project: Project) -> None:
    policy(project, enabled=False)
    call_command("route", project=project.slug, audit_fraction=0.1, stdout=StringIO())
    assert not selectors.policy_for(project).enabled


def decided(project: Project, n: int, route: str, **decision: object) -> list[Comparison]:
    """`n` judged comparisons routed to `route` (audits for `both`, else below the budget)."""
    comparisons = judged(project, n)
    reason = "audit" if route == "both" else "budget"
    for comparison in comparisons:
        RouteDecisionFactory(comparison=comparison, route=route, reason=reason, **decision)
    Comparison.objects.filter(pk__in=[c.pk for c in comparisons]).update(route=route)
    return comparisons


def test_final_label_accuracy_is_post_stratified_by_predicted_risk(project: Project) -> None:
    policy(project)
    safe_audits = decided(project, 10, "both", p_disagree=0.1)
    risky_audits = decided(project, 10, "both", p_disagree=0.7)
    decided(project, 20, "judge", p_disagree=0.1)
    for comparison in safe_audits:
        vote(comparison, ["model_a"] * 3)  # the judge said model_a: agrees
    for comparison in risky_audits:
        vote(comparison, ["model_b"] * 3)  # disagrees
    overview = selectors.router_overview(project, selectors.policy_for(project))
    assert overview.audit.rate == 0.5
    assert overview.final_sources == {"human": 20, "judge": 20}
    # One overall audit rate would say (20 + 20 x 0.5) / 40 = 0.75; the judge-only pairs are
    # all low-risk, where the judge agreed on every audited pair.
    assert overview.final_accuracy == 1.0
    low, high = overview.final_accuracy_interval
    assert 0.8 < low < 1.0 and high == 1.0
    # Only the cold-start rule routed them: its scores are no probabilities.
    assert overview.model_accuracy_judge_only is None
    fit = DisagreementFit.objects.create(
        project=project, judge=JUDGE, kind="logistic", labelled=60, judge_wrong=20
    )
    RouteDecision.objects.filter(route="judge").update(fit=fit)
    overview = selectors.router_overview(project, selectors.policy_for(project))
    assert overview.model_accuracy_judge_only == pytest.approx(0.9)
    assert overview.model_judge_only_pairs == 20


def test_audits_of_pairs_sure_to_go_to_people_do_not_speak_for_the_judges_labels(
    project: Project,
) -> None:
    policy(project)
    # All of one predicted risk: post-stratification alone cannot tell the audits apart.
    sure_audits = decided(project, 10, "both", p_disagree=0.5, surely_human=True)
    open_audits = decided(project, 10, "both", p_disagree=0.5, surely_human=False)
    decided(project, 20, "judge", p_disagree=0.5, surely_human=False)
    waiting = decided(project, 10, "human", p_disagree=0.5, surely_human=True)  # no vote yet
    for comparison in sure_audits:
        vote(comparison, ["model_b"] * 3)  # the judge said model_a: disagrees
    for comparison in open_audits:
        vote(comparison, ["model_a"] * 3)  # agrees

    overview = selectors.router_overview(project, selectors.policy_for(project))
    # The audit stream's agreement counts every audit.
    assert overview.audit.pairs == 20 and overview.audit.rate == 0.5
    assert overview.final_sources == {"human": 20, "judge": 30}
    # The pairs routed to the judge are represented by the audits they could have been: every
    # one agreed. The pairs waiting for people keep the judge's label for now, measured on
    # every audit (0.5). Every audit for all would have said (20 + 30 x 0.5) / 50 = 0.7.
    assert overview.final_accuracy == pytest.approx((20 + 20 * 1.0 + 10 * 0.5) / 50)
    # With fewer than five finished audits of pairs the judge might have had, every audit
    # speaks for its pairs: the judge then looks always wrong (the sure audits disagreed).
    Vote.objects.filter(comparison__in=open_audits[1:]).delete()
    Comparison.objects.filter(pk__in=[c.pk for c in open_audits[1:]]).update(vote_count=0)
    overview = selectors.router_overview(project, selectors.policy_for(project))
    assert overview.final_sources == {"human": 11, "judge": 39}
    right = 11 + (20 + 9 + len(waiting)) * (1 / 11)  # one agreeing audit of eleven
    assert overview.final_accuracy == pytest.approx(right / 50)


def test_a_policy_naming_another_judge_keeps_the_routed_pairs_final_labels(
    project: Project,
) -> None:
    policy(project)
    audited, judge_only = judged(project, 10), judged(project, 20)
    for comparisons, route, reason in ((audited, "both", "audit"), (judge_only, "judge", "budget")):
        for comparison in comparisons:
            RouteDecisionFactory(comparison=comparison, route=route, reason=reason, judge=JUDGE)
    for comparison in audited:
        vote(comparison, ["model_a"] * 3)  # the judge said model_a on every pair
    newcomer = judged(project, 5, verdict="model_b", judge="new-judge")  # not routed yet
    before = selectors.router_overview(project, selectors.policy_for(project))

    services.routing_policy_set(project=project, judge="new-judge")
    after = selectors.router_overview(project, selectors.policy_for(project))

    labels = {label.comparison_id: label for label in selectors.final_labels(project, "new-judge")}
    assert {(labels[c.pk].source, labels[c.pk].judge) for c in judge_only} == {("judge", JUDGE)}
    assert {(labels[c.pk].label, labels[c.pk].judge) for c in newcomer} == {
        ("model_b", "new-judge")
    }
    assert after.final_sources == {"human": 10, "judge": 25}
    assert before.final_sources == {"human": 10, "judge": 20, "none": 5}
    # The routed pairs are measured by their own judge's audits; the new judge has none here,
    # so nothing says how often its labels on the 5 newcomers are right.
    assert before.final_accuracy == 1.0
    assert after.final_accuracy is None
    assert selectors.judge_routed_count(project, JUDGE) == 20
    # Exports and the leaderboard's final labels agree, even where the new judge judged too.
    Judgment.objects.create(
        comparison=judge_only[0], judge="new-judge", verdict="tie", p_a=0.3, p_b=0.3,
        p_tie=0.4, consistent=True,
    )  # fmt: skip
    exported = {
        pair.context.comparison_id: pair.final
        for pair in stream_pairs(project, ExportOptions(format="pairs", source="final"))
    }
    assert exported[judge_only[0].pk] == ("model_a", "judge")
    assert exported[newcomer[0].pk] == ("model_b", "judge")
    final = battle_counts(project, LeaderboardFilters(source="final"))
    assert final.total_votes == 10 * 3 + 25
    # A pair not routed yet that only the old judge labelled has no final label anywhere: the
    # old judge does not stand in for the new one.
    (orphan,) = judged(project, 1)
    assert (
        selectors.router_overview(project, selectors.policy_for(project)).final_sources["none"] == 1
    )
    exported = {
        pair.context.comparison_id: pair.final
        for pair in stream_pairs(project, ExportOptions(format="pairs", source="final"))
    }
    assert exported[orphan.pk] == (None, None)
    assert battle_counts(project, LeaderboardFilters(source="final")).total_votes == 55


def test_the_router_queues_its_judge_on_pending_pairs_once(project: Project) -> None:
    policy(project)
    routed = ComparisonFactory(project=project, route="judge")  # decided on another verdict
    pending = ComparisonFactory.create_batch(2, project=project, route="pending")
    judged(project, 1)
    assert services.pending_judge_job(project=project) is None  # where the judge lives: unknown
    JudgeJob.objects.create(
        project=project, judge=JUDGE, judge_spec={"source": "/models/judge"}, status="done"
    )
    job = services.pending_judge_job(project=project)
    assert job is not None and job.judge_spec == {"source": "/models/judge"}
    assert sorted(job.comparison_ids) == sorted(c.pk for c in pending)
    assert services.pending_judge_job(project=project) is None  # one job at a time
    # The jobs page's button judges everything routed to the judge, the waiting pairs first.
    everything = backend_services.judge_job_create(project=project, judge=JUDGE, dispatch=False)
    assert everything.comparison_ids[:2] == sorted(c.pk for c in pending)
    assert routed.pk in everything.comparison_ids[2:]
    # The bundled default judge needs no earlier job.
    JudgeJob.objects.all().delete()
    services.routing_policy_set(project=project, judge=DEFAULT_JUDGE, min_batch=1)
    assert services.pending_judge_job(project=project).judge_spec == {}


def test_exports_take_the_routers_judge_for_the_final_label(project: Project) -> None:
    policy(project)
    (comparison,) = judged(project, 1, verdict="model_b", p_a=0.1)
    Judgment.objects.create(
        comparison=comparison, judge="newer-judge", verdict="model_a", p_a=0.9, p_b=0.05,
        p_tie=0.05, consistent=True,
    )  # fmt: skip
    (pair,) = stream_pairs(project, ExportOptions(format="pairs", source="final"))
    assert pair.final == ("model_b", "judge")
    RoutingPolicy.objects.all().delete()  # without a router: the newest verdict
    (pair,) = stream_pairs(project, ExportOptions(format="pairs", source="final"))
    assert pair.final == ("model_a", "judge")


def test_the_beat_queues_the_judge_and_route_now_does_not(project: Project) -> None:
    policy(project)
    ComparisonFactory.create_batch(2, project=project, route="pending")
    JudgeJob.objects.create(project=project, judge=JUDGE, judge_spec={}, status="done")
    services.router_run(project=project, force=True)  # "Route now"
    assert JudgeJob.objects.count() == 1
    router_run_all_task.delay()  # the beat entry (tasks run in-process in these tests)
    assert JudgeJob.objects.filter(status="queued").count() == 1


def test_a_new_policy_reads_the_bundled_judge_by_default() -> None:
    assert RoutingPolicy._meta.get_field("judge").default == DEFAULT_JUDGE


def _duel(project: Project, strong: ModelEntry, weak: ModelEntry, i: int, judge_right: bool):
    """A pending comparison of `strong` and `weak` (sides alternating), judged decisively:
    for the stronger model when `judge_right`, else for the weaker one."""
    prompt = PromptFactory(project=project)
    first, second = (strong, weak) if i % 2 == 0 else (weak, strong)
    comparison = ComparisonFactory(
        project=project,
        prompt=prompt,
        candidate_a=CandidateFactory(prompt=prompt, model=first),
        candidate_b=CandidateFactory(prompt=prompt, model=second),
        route="pending",
    )
    strong_side = "model_a" if first == strong else "model_b"
    weak_side = {"model_a": "model_b", "model_b": "model_a"}[strong_side]
    verdict = strong_side if judge_right else weak_side
    Judgment.objects.create(
        comparison=comparison, judge=JUDGE, verdict=verdict, p_a=0.5, p_b=0.4, p_tie=0.1,
        consistent=True,
    )  # fmt: skip
    return comparison, strong_side


def test_turns_of_one_conversation_share_a_conversation_key(project: Project) -> None:
    # MT-Bench's second turn is its own prompt whose turns begin with the first turn's. An
    # opening that reads as JSON ("42") is text like any other.
    opening = "42"
    strong, weak = ModelEntryFactory(project=project), ModelEntryFactory(project=project)
    first, second, other = (
        judged_on(project, turns, strong, weak, "model_a").prompt
        for turns in ([opening], [opening, "Now in one sentence."], ["Something else."])
    )
    verdicts = {v.prompt_key: v for v in selectors.judge_verdicts(project, JUDGE)}
    keys = [verdicts[str(p.pk)].conversation_key for p in (first, second, other)]
    assert keys == [
        conversation_of("42"),
        conversation_of("42"),
        conversation_of("Something else."),
    ]
    assert [verdicts[str(p.pk)].turn for p in (first, second, other)] == [1, 2, 1]
    comparison = Comparison.objects.select_related("prompt", "candidate_a", "candidate_b").get(
        prompt=second
    )
    pair = selectors.routing_pair(comparison, comparison.judgments.get())
    assert pair.verdict() == verdicts[str(second.pk)]


def test_the_router_learns_to_doubt_verdicts_against_the_judges_own_ranking(
    project: Project,
) -> None:
    # People always prefer the strong model; the judge does too, except on every fifth pair.
    policy(project, budget_share=1.0, audit_fraction=0.0, retrain_every=10)
    strong, weak = ModelEntryFactory(project=project), ModelEntryFactory(project=project)
    duels = [_duel(project, strong, weak, i, judge_right=i % 5 != 0) for i in range(80)]
    services.comparisons_route(project=project)
    for comparison, strong_side in duels:
        vote(comparison, [strong_side] * 3)
    decisions = RouteDecision.objects.in_bulk(field_name="comparison_id")
    consensus = [decisions[c.pk].features["global_consensus"] for c, _ in duels]
    # Stored with each decision: against the judge's other verdicts, the flipped ones stand out.
    assert max(consensus[0::5]) < 0 < min(v for i, v in enumerate(consensus) if i % 5)
    fit = services.router_retrain(project=project)
    assert fit is not None and fit.kind == DisagreementFit.Kind.LOGISTIC
    assert fit.cv_auroc is not None and fit.cv_auroc > 0.9
    # New pairs: the stored model doubts the verdict for the weaker model.
    Comparison.objects.filter(pk__in=[c.pk for c, _ in duels]).update(route="human")
    services.routing_policy_set(project=project, judge=JUDGE, budget_share=0.5, min_batch=1)
    doubtful, _ = _duel(project, strong, weak, 0, judge_right=False)
    plain, _ = _duel(project, strong, weak, 1, judge_right=True)
    services.comparisons_route(project=project)
    new = {d.comparison_id: d for d in RouteDecision.objects.filter(fit=fit)}
    assert new[doubtful.pk].p_disagree > new[plain.pk].p_disagree


def test_a_days_unused_human_votes_go_to_the_riskiest_judge_labelled_pairs(
    project: Project,
) -> None:
    # No human votes to spend at first: everything goes to the judge.
    policy(project, budget_kind="daily", daily_human_votes=0, audit_fraction=0.0)
    plain = judged(project, 6, p_a=0.9)
    flipped = judged(project, 3, verdict="tie", consistent=False, p_a=0.5)
    services.comparisons_route(project=project)
    assert routes(project)["judge"] == 9
    assert services.judge_pairs_escalate(project=project) == 0  # nothing to spend
    # Two pairs' worth of votes a day now (votes_per_comparison is 3), and no new pair needs
    # them: the flipped verdicts, riskiest by the current model, go to people.
    project.votes_per_comparison = 3
    project.save()
    policy(project, budget_kind="daily", daily_human_votes=6, audit_fraction=0.0)
    first = {d.comparison_id: d for d in RouteDecision.objects.all()}
    assert services.judge_pairs_escalate(project=project) == 2
    escalated = RouteDecision.objects.filter(reason=RouteDecision.Reason.ESCALATE)
    assert set(escalated.values_list("comparison_id", flat=True)) < {c.pk for c in flipped}
    assert set(escalated.values_list("route", flat=True)) == {"human"}
    # The first decision stays explainable: it is kept in the escalated decision's history.
    for decision in escalated:
        (earlier,) = decision.history
        was = first[decision.comparison_id]
        assert (earlier["route"], earlier["reason"]) == ("judge", "budget")
        assert earlier["p_disagree"] == was.p_disagree
        assert earlier["features"] == was.features
        assert earlier["decided_at"] == was.decided_at.isoformat()
    assert routes(project)["human"] == 2
    # The promised votes spend the day's budget: nothing more until votes come in tomorrow.
    assert services.judge_pairs_escalate(project=project) == 0
    # With more votes a day, new judged pairs are routed before anything is escalated.
    policy(project, budget_kind="daily", daily_human_votes=12, audit_fraction=0.0)
    (new,) = judged(project, 1, p_a=0.9)
    assert services.judge_pairs_escalate(project=project) == 0
    services.comparisons_route(project=project)
    assert Comparison.objects.get(pk=new.pk).route == "human"  # 12 - 6 promised: two pairs
    assert services.judge_pairs_escalate(project=project) == 1  # the last flipped verdict
    assert set(escalated.values_list("comparison_id", flat=True)) == {c.pk for c in flipped}
    assert all(c.route != "human" for c in Comparison.objects.filter(pk__in=[p.pk for p in plain]))


def test_pairs_routed_by_an_older_version_can_still_be_escalated(project: Project) -> None:
    # Routed before an upgrade changed the feature columns: the stored features are of no use
    # to the new model, so escalation builds them again and keeps the ones that decided.
    policy(project, budget_kind="daily", daily_human_votes=0, audit_fraction=0.0)
    flipped = judged(project, 2, verdict="tie", consistent=False, p_a=0.5)
    judged(project, 4, p_a=0.9)
    services.comparisons_route(project=project)
    RouteDecision.objects.update(features={"a_column_this_version_lacks": 1.0})
    project.votes_per_comparison = 1
    project.save()
    policy(project, budget_kind="daily", daily_human_votes=2, audit_fraction=0.0)
    assert services.judge_pairs_escalate(project=project) == 2
    escalated = RouteDecision.objects.filter(reason=RouteDecision.Reason.ESCALATE)
    assert {d.comparison_id for d in escalated} == {c.pk for c in flipped}
    names = set(feature_names(services.feature_config()))
    assert all(set(d.features) == names for d in escalated)
    assert all(d.features["verdict_inconsistent"] == 1.0 for d in escalated)


def test_escalation_scores_every_candidate_in_batches_and_only_its_judges_pairs(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(project, budget_kind="daily", daily_human_votes=0, audit_fraction=0.0)
    judged(project, 3, p_a=0.9)
    (risky,) = judged(project, 1, verdict="tie", consistent=False, p_a=0.5)
    services.comparisons_route(project=project)
    # Routed as the riskiest by a model that has since been replaced: now the least.
    RouteDecision.objects.filter(comparison=risky).update(p_disagree=0.0)
    # A pair the policy's judge did not label stays out, however risky it looked.
    (foreign,) = judged(project, 1, verdict="tie", consistent=False, judge="old-judge")
    RouteDecisionFactory(comparison=foreign, route="judge", judge="old-judge", p_disagree=0.99)
    Comparison.objects.filter(pk=foreign.pk).update(route="judge")
    project.votes_per_comparison = 1
    project.save()
    policy(project, budget_kind="daily", daily_human_votes=1, audit_fraction=0.0)
    monkeypatch.setattr(services, "MAX_BATCH", 2)  # four candidates: scored in two batches
    assert services.judge_pairs_escalate(project=project) == 1
    assert Comparison.objects.get(pk=risky.pk).route == "human"
    assert Comparison.objects.get(pk=foreign.pk).route == "judge"


def test_a_tilted_audit_draws_risky_pairs_more_and_weights_them_back(project: Project) -> None:
    policy(project, budget_share=1.0, audit_fraction=0.5, audit_tilt=1.0)
    confident = judged(project, 12, p_a=0.95)  # the judge is right on these
    flipped = judged(project, 4, verdict="tie", consistent=False, p_a=0.5)  # and wrong on these

    services.comparisons_route(project=project, rng=random.Random(4))

    decisions = {d.comparison_id: d for d in RouteDecision.objects.all()}
    chances = {pk: d.audit_chance for pk, d in decisions.items()}
    assert sum(chances.values()) == pytest.approx(8.0)  # half of 16 pairs, in expectation
    # Tilt 1: a pair's chance is proportional to its P(disagree), up to 1: the flipped
    # verdicts (cold-start prior 0.6) are always audited, the rest share what is left.
    assert {chances[c.pk] for c in flipped} == {1.0}
    ratios = {
        round(decisions[c.pk].audit_chance / decisions[c.pk].p_disagree, 9) for c in confident
    }
    assert len(ratios) == 1
    assert sum(chances[c.pk] for c in confident) == pytest.approx(4.0)
    audited = [pk for pk, d in decisions.items() if d.route == "both"]
    assert len(audited) == 8 and {c.pk for c in flipped} <= set(audited)
    for comparison in confident + flipped:
        vote(comparison, ["model_a"] * comparison.votes_wanted)

    audit = selectors.audit_agreement(project, JUDGE)

    ok = {c.pk: True for c in confident} | {c.pk: False for c in flipped}
    weights = {pk: 1 / chances[pk] for pk in audited}
    expected = sum(weights[pk] for pk in audited if ok[pk]) / sum(weights.values())
    assert audit.pairs == 8 and audit.agree == sum(ok[pk] for pk in audited)
    assert audit.rate == pytest.approx(expected)
    # Unweighted, the flipped pairs drawn more often would make the judge look worse.
    assert audit.rate > audit.agree / audit.pairs
    assert audit.effective_pairs < 8 and audit.interval[0] < audit.rate < audit.interval[1]
    accuracy = selectors.final_accuracy(project, JUDGE, audit)
    assert accuracy is not None and 0.0 < accuracy[0] <= 1.0


def test_an_audited_pair_is_ranked_by_its_risk_like_the_others(project: Project) -> None:
    policy(project, budget_share=1.0, audit_fraction=0.5)
    judged(project, 6)
    judged(project, 6, verdict="tie", consistent=False, p_a=0.5)
    services.comparisons_route(project=project, rng=random.Random(3))
    decisions = RouteDecision.objects.all()
    assert {d.route for d in decisions} == {"human", "both"}
    for decision in decisions:
        assert decision.priority == decision.p_disagree
    # Decisions stored with the old placeholder priority get theirs back.
    decisions.filter(route="both").update(priority=1.0)
    migration = importlib.import_module("routing.migrations.0004_policy_ranges_audit_priority")
    migration.audit_priorities(django_apps, None)
    assert all(d.priority == d.p_disagree for d in RouteDecision.objects.all())


def test_audits_decided_before_the_tilt_get_their_uniform_chance(project: Project) -> None:
    policy(project, budget_share=1.0, audit_fraction=1.0)
    comparisons = judged(project, 4)
    services.comparisons_route(project=project)
    RouteDecision.objects.update(audit_chance=None)  # as before migration 0003
    RoutingPolicy.objects.filter(project=project).update(audit_fraction=0.2)
    migration = importlib.import_module("routing.migrations.0003_audit_tilt")
    migration.uniform_chances(django_apps, None)
    assert set(RouteDecision.objects.values_list("audit_chance", flat=True)) == {0.2}
    winners = ["model_a", "model_a", "model_a", "tie"]
    for comparison, winner in zip(comparisons, winners, strict=True):
        vote(comparison, [winner] * comparison.votes_wanted)
    audit = selectors.audit_agreement(project, JUDGE)
    assert (audit.pairs, audit.agree, audit.rate, audit.effective_pairs) == (4, 3, 0.75, 4.0)
    assert audit.interval == pytest.approx(wilson_interval(3, 4))
