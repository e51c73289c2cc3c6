"""The figures of a project's router page: judge-human agreement on the audit stream, where
final labels come from and how many are right, the budget used."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from django.db.models import Avg, Count, Exists, F, OuterRef, Value
from django.db.models.functions import Coalesce

from annotation.models import Annotator, Comparison, Project, Vote
from models_backend.models import Judgment
from routing.allocation import DEFAULT_AUDIT_FRACTION
from routing.audit import judge_labels_right, judge_side, weighted_interval
from routing.disagreement import model_from_params
from routing.evaluation import judge_outcome
from routing.features import feature_meaning
from routing.models import DisagreementFit, RouteDecision, RoutingPolicy
from routing.selectors.comparisons import budget_left_today, current_fit, human_majorities
from routing.selectors.decisions import FeatureRow


@dataclass(frozen=True, slots=True)
class Agreement:
    """How often the judge agreed with the human majority, with a 95% Wilson interval.

    `pairs` and `agree` count audited pairs. When their chances of an audit differed, `rate`
    is the weighted rate (each pair counting 1 / its chance, which stands for every routed
    pair) and the interval is over the sample's `effective_pairs`.
    """

    pairs: int
    agree: int
    interval: tuple[float, float] | None
    weighted_rate: float | None = None
    effective_pairs: float | None = None

    @classmethod
    def of(cls, oks: Sequence[bool], chances: Sequence[float], **more: Any) -> Self:
        weighted = weighted_interval(np.array(oks, dtype=float), np.array(chances, dtype=float))
        if weighted is None:
            return cls(0, 0, None, **more)
        rate, low, high, effective = weighted
        return cls(len(oks), sum(oks), (low, high), rate, effective, **more)

    @property
    def unequal_chances(self) -> bool:
        """Whether the weighting mattered: the pairs had different chances of an audit."""
        return self.effective_pairs is not None and self.effective_pairs < self.pairs - 1e-6

    @property
    def rate(self) -> float | None:
        if self.weighted_rate is not None:
            return self.weighted_rate
        return self.agree / self.pairs if self.pairs else None


@dataclass(frozen=True, slots=True)
class CategoryAgreement(Agreement):
    category: str = ""


@dataclass(frozen=True, slots=True)
class AuditAgreement(Agreement):
    # Per finished audited pair: the router's P(disagree), whether the judge agreed, and the
    # pair's chance of an audit.
    scored: tuple[tuple[float, bool, float], ...] = ()
    # Per such pair, whether it was `surely_human` (unknown, before that was recorded, counts
    # as not sure, as every audit did then).
    surely_human: tuple[bool, ...] = ()
    # The same per prompt category, the least trusted first.
    by_category: tuple[CategoryAgreement, ...] = ()


def audit_agreement(project: Project, judge: str) -> AuditAgreement:
    """Judge-human agreement on the random audit stream only (route `both`), each pair
    weighted by 1 / its chance of an audit: unbiased. Also per prompt category: where the
    judge can be trusted and where it cannot."""
    audited = {
        pk: (p, category, chance, sure)
        for pk, p, category, chance, sure in Comparison.objects.filter(
            project=project,
            route_decision__reason=RouteDecision.Reason.AUDIT,
            vote_count__gte=F("votes_wanted"),
        ).values_list(
            "pk",
            "route_decision__p_disagree",
            "prompt__category",
            "route_decision__audit_chance",
            "route_decision__surely_human",
        )
    }
    truths = human_majorities(audited)
    verdicts = dict(
        Judgment.objects.filter(judge=judge, comparison_id__in=list(truths)).values_list(
            "comparison_id", "verdict"
        )
    )
    agreed = {pk: judge_outcome(verdicts[pk]) == truths[pk] for pk in verdicts}
    uniform = _uniform_chance(project) if any(row[2] is None for row in audited.values()) else 0
    scored = tuple((audited[pk][0], ok, audited[pk][2] or uniform) for pk, ok in agreed.items())
    per_category: defaultdict[str, list[tuple[float, bool, float]]] = defaultdict(list)
    for pk, row in zip(agreed, scored, strict=True):
        per_category[audited[pk][1] or "uncategorised"].append(row)
    by_category = sorted(
        (
            CategoryAgreement.of(
                [ok for _, ok, _ in rows], [chance for *_, chance in rows], category=name
            )
            for name, rows in per_category.items()
        ),
        key=lambda row: (row.rate, row.category),
    )
    return AuditAgreement.of(
        [ok for _, ok, _ in scored],
        [chance for *_, chance in scored],
        scored=scored,
        surely_human=tuple(bool(audited[pk][3]) for pk in agreed),
        by_category=tuple(by_category),
    )


def _uniform_chance(project: Project) -> float:
    """The audit chance of a decision written without one (none since migration 0003 filled
    them in): audits were uniform then, at the policy's audit share."""
    share = (
        RoutingPolicy.objects.filter(project=project).values_list("audit_fraction", flat=True)
    ).first()
    return share or DEFAULT_AUDIT_FRACTION


def _judged_by_decider(judge: str) -> Exists:
    """Whether a comparison has a verdict from its deciding judge: the one its routing
    decision read, else `judge` (see `deciding_judges`)."""
    decider = Coalesce(OuterRef("route_decision__judge"), Value(judge))
    return Exists(Judgment.objects.filter(comparison=OuterRef("pk"), judge=decider))


def final_sources(project: Project, judge: str) -> dict[str, int]:
    """How many comparisons' final label comes from people, the judge, or nobody yet (SQL)."""
    counted = Vote.objects.filter(
        comparison=OuterRef("pk"), annotator__state=Annotator.State.ACTIVE
    )
    rows = (
        Comparison.objects.for_project(project)
        .rated()
        .annotate(human=Exists(counted), judged=_judged_by_decider(judge))
        .values_list("human", "judged")
        .annotate(n=Count("*"))
        .order_by()
    )
    sources: Counter[str] = Counter()
    for human, judged, n in rows:
        sources["human" if human else "judge" if judged else "none"] += n
    return {source: sources[source] for source in ("human", "judge", "none") if sources[source]}


def final_accuracy(
    project: Project, judge: str, audit: AuditAgreement, sources: dict[str, int] | None = None
) -> tuple[float, tuple[float, float]] | None:
    """Estimated share of right final labels, with a 95% interval; None before audits, or
    while a judge whose verdicts are final labels has no audited pair here.

    Human labels count as right (they define the truth); the judge-labelled ones as often as
    their judge agreed on audited pairs of the same predicted risk (`judge_labels_right`).
    Pairs routed to the judge are measured on the audited pairs it might have been given
    (`routing.audit.judge_side`); pairs still waiting for a route or for their human votes, on
    every audited pair.
    Pairs routed under an earlier policy keep that policy's judge, measured on its own audits.
    `sources` is `final_sources(project, judge)` where the caller has it already.
    """
    counted = Vote.objects.filter(
        comparison=OuterRef("pk"), annotator__state=Annotator.State.ACTIVE
    )
    # Per deciding judge and per kind (routed to it, or waiting for a route or for people):
    # the pairs' P(disagree).
    judge_only: defaultdict[tuple[str, bool], list[float]] = defaultdict(list)
    for p, decider, route in (
        Comparison.objects.filter(project=project, is_gold=False)
        .exclude(Exists(counted))
        .filter(_judged_by_decider(judge))
        .values_list("route_decision__p_disagree", "route_decision__judge", "route")
    ):
        routed_to_judge = route == Comparison.Route.JUDGE
        judge_only[decider or judge, routed_to_judge].append(p if p is not None else np.nan)
    if not judge_only and not audit.pairs:
        return None  # nothing audited yet
    humans = (sources if sources is not None else final_sources(project, judge)).get("human", 0)
    total = humans + sum(len(ps) for ps in judge_only.values())
    if total == 0:
        return None
    expected = np.zeros(3)
    agreements = {judge: audit}
    for (name, routed_to_judge), ps in judge_only.items():
        if name not in agreements:
            agreements[name] = audit_agreement(project, name)
        agreement = agreements[name]
        if not agreement.scored:
            return None  # a judge never audited here: nothing says how often it is right
        scored = np.array(agreement.scored, dtype=float).reshape(-1, 3)
        if routed_to_judge:
            scored = scored[judge_side(np.array(agreement.surely_human, dtype=bool))]
        right = judge_labels_right(
            np.array(ps, dtype=float), scored[:, 0], scored[:, 1], scored[:, 2]
        )
        assert right is not None  # there are audited pairs
        expected += right
    estimate, low, high = (humans + expected) / total
    return float(estimate), (float(low), float(high))


@dataclass(frozen=True, slots=True)
class RouterOverview:
    policy: RoutingPolicy
    routes: dict[str, int]
    pending_unjudged: int
    judges_seen: list[str]
    human_share: float | None
    # Routed pairs, and those of them given to people (audits included).
    routed_pairs: int
    human_pairs: int
    # A share budget: how many of the routed pairs it pays people for (None for a daily one).
    budget_comparisons: int | None
    # A daily budget: votes cast today, votes owed to open human pairs (both spent), and what
    # is left (None for a share budget).
    human_votes_today: int
    human_votes_promised: int
    human_votes_left_today: int | None
    audit: AuditAgreement
    final_sources: dict[str, int]
    final_accuracy: float | None
    final_accuracy_interval: tuple[float, float] | None
    # How often the fitted model expected the judge-only pairs it routed to be right (None
    # while only the cold-start rule has routed), and how many pairs that speaks for.
    model_accuracy_judge_only: float | None
    model_judge_only_pairs: int
    fit: DisagreementFit | None

    @property
    def weighs_most(self) -> list[FeatureRow]:
        """The current fit's heaviest standardised weights (+ towards people), with what each
        feature means; empty under the cold-start rule."""
        if self.fit is None or self.fit.kind != DisagreementFit.Kind.LOGISTIC:
            return []
        weights = model_from_params(self.fit.params).weights()
        return [
            FeatureRow(name, 0.0, feature_meaning(name), weight)
            for name, weight in list(weights.items())[:WEIGHTS_SHOWN]
        ]


WEIGHTS_SHOWN = 8


def router_overview(project: Project, policy: RoutingPolicy) -> RouterOverview:
    """The figures admins watch: who labels what, budget used, how far the judge is trusted."""
    routes = Counter(
        dict(
            Comparison.objects.for_project(project)
            .rated()
            .values_list("route")
            .annotate(n=Count("*"))
            .order_by()
        )
    )
    decided = RouteDecision.objects.filter(comparison__project=project)
    n_decided = decided.count()
    n_human = decided.filter(route__in=["human", "both"]).count()
    pending = Comparison.objects.filter(project=project, route=Comparison.Route.PENDING)
    unjudged = pending.exclude(judgments__judge=policy.judge).count()
    judges = Judgment.objects.filter(comparison__project=project).values_list("judge", flat=True)
    audit = audit_agreement(project, policy.judge)
    sources = final_sources(project, policy.judge)
    accuracy = final_accuracy(project, policy.judge, audit, sources)
    # The cold-start rule's scores order pairs but are no probabilities: only a fitted model's
    # say how often the judge-only pairs should be right.
    fitted_judge_only = decided.filter(route="judge", fit__kind=DisagreementFit.Kind.LOGISTIC)
    expected = fitted_judge_only.aggregate(wrong=Avg("p_disagree"), pairs=Count("id"))
    budget = None
    if policy.budget_kind == RoutingPolicy.BudgetKind.SHARE:
        budget = round(policy.budget_share * n_decided)
    daily = budget_left_today(project, policy)
    return RouterOverview(
        policy=policy,
        routes={route: routes.get(route, 0) for route in Comparison.Route.values},
        pending_unjudged=unjudged,
        judges_seen=sorted(judges.order_by().distinct()),
        human_share=n_human / n_decided if n_decided else None,
        routed_pairs=n_decided,
        human_pairs=n_human,
        budget_comparisons=budget,
        human_votes_today=daily.votes_today,
        human_votes_promised=daily.open_slots,
        human_votes_left_today=daily.votes_left if budget is None else None,
        audit=audit,
        final_sources=sources,
        final_accuracy=accuracy[0] if accuracy else None,
        final_accuracy_interval=accuracy[1] if accuracy else None,
        model_accuracy_judge_only=1.0 - expected["wrong"] if expected["pairs"] else None,
        model_judge_only_pairs=expected["pairs"],
        fit=current_fit(project, policy.judge),
    )
