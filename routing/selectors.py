"""Reads for the router: comparisons as the pure router sees them, human majorities, the
final label of each comparison, and the figures of a project's router page."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet

from annotation.models import Annotator, Comparison, Project, Vote
from models_backend.models import Judgment
from routing.evaluation import Outcome, human_majority, judge_outcome
from routing.features import RoutingPair
from routing.models import DisagreementFit, RouteDecision, RoutingPolicy

# How the router writes a verdict that flipped when the answers were swapped (MT-Bench's name).
INCONSISTENT = "tie (inconsistent)"


def policy_for(project: Project) -> RoutingPolicy | None:
    return RoutingPolicy.objects.filter(project=project).first()


def judgments_by_comparison(comparison_ids: Iterable[int], judge: str) -> dict[int, Judgment]:
    return {
        j.comparison_id: j
        for j in Judgment.objects.filter(judge=judge, comparison_id__in=list(comparison_ids))
    }


def router_label(judgment: Judgment | None) -> str | None:
    """The verdict as the router reads it: a flip between the two orders is `inconsistent`."""
    if judgment is None:
        return None
    return str(judgment.verdict) if judgment.consistent else INCONSISTENT


def _prob_a(p_a: float, p_b: float) -> float | None:
    total = p_a + p_b
    return p_a / total if total > 0 else None


def other_labels(comparison_ids: Iterable[int], judge: str) -> dict[int, tuple[str, ...]]:
    """The verdicts of every other judge, per comparison, as the router reads them."""
    labels: defaultdict[int, list[str]] = defaultdict(list)
    others = Judgment.objects.filter(comparison_id__in=list(comparison_ids)).exclude(judge=judge)
    for judgment in others.order_by("judge"):
        labels[judgment.comparison_id].append(router_label(judgment) or "")
    return {pk: tuple(found) for pk, found in labels.items()}


def routing_pair(
    comparison: Comparison, judgment: Judgment | None, others: tuple[str, ...] = ()
) -> RoutingPair:
    """A comparison (with prompt and candidates loaded), its judgment and other judges'
    verdicts, for the router."""
    prob_a = orders = None
    if judgment is not None:
        prob_a = _prob_a(judgment.p_a, judgment.p_b)
        per_order = [
            _prob_a(order.get("p_a", 0.0), order.get("p_b", 0.0))
            for order in (judgment.per_order or {}).values()
        ]
        if per_order and all(p is not None for p in per_order):
            orders = tuple(float(p) for p in per_order)  # type: ignore[arg-type]
    prompt = comparison.prompt
    return RoutingPair(
        id=str(comparison.pk),
        prompt=prompt.text,
        response_a=comparison.candidate_a.text,
        response_b=comparison.candidate_b.text,
        llm_label=router_label(judgment),
        llm_prob_a=prob_a,
        llm_prob_a_orders=orders,
        category=prompt.category or None,
        turn=len(prompt.turns) or 1,
        has_reference=bool(prompt.reference_answer),
        other_labels=others,
    )


def with_texts(comparisons: QuerySet[Comparison]) -> QuerySet[Comparison]:
    return comparisons.select_related("prompt", "candidate_a", "candidate_b")


def _counted_votes(comparison_ids: Iterable[int]) -> QuerySet[Vote]:
    """Votes that count: those of annotators in good standing."""
    return Vote.objects.filter(
        comparison_id__in=list(comparison_ids), annotator__state=Annotator.State.ACTIVE
    )


def human_majorities(comparison_ids: Iterable[int]) -> dict[int, Outcome]:
    """The human majority per comparison with counted votes: both-bad counts as a tie, and a
    shared top count (humans expressed no preference) is a tie, as in `router_eval`."""
    winners: defaultdict[int, list[dict[str, str]]] = defaultdict(list)
    rows = _counted_votes(comparison_ids).values_list("comparison_id", "winner")
    for comparison_id, winner in rows:
        outcome = "tie" if winner.startswith("tie") else winner
        winners[comparison_id].append({"winner": outcome})
    majorities: dict[int, Outcome] = {}
    for comparison_id, votes in winners.items():
        majority, _split = human_majority(votes)
        majorities[comparison_id] = majority or "tie"
    return majorities


@dataclass(frozen=True, slots=True)
class FinalLabel:
    comparison_id: int
    label: Outcome | None
    source: str  # "human", "judge" or "none"


def final_labels(project: Project, judge: str) -> list[FinalLabel]:
    """Per comparison: the human majority where humans voted, else the judge's verdict."""
    ids = list(
        Comparison.objects.filter(project=project, is_gold=False)
        .order_by("id")
        .values_list("pk", flat=True)
    )
    humans = human_majorities(ids)
    verdicts = dict(
        Judgment.objects.filter(judge=judge, comparison_id__in=ids).values_list(
            "comparison_id", "verdict"
        )
    )
    labels = []
    for pk in ids:
        if pk in humans:
            labels.append(FinalLabel(pk, humans[pk], "human"))
        elif pk in verdicts:
            labels.append(FinalLabel(pk, judge_outcome(verdicts[pk]), "judge"))
        else:
            labels.append(FinalLabel(pk, None, "none"))
    return labels


@dataclass(frozen=True, slots=True)
class Labelled:
    """Comparisons with a judge verdict and a human majority: the disagreement model's data."""

    comparisons: list[Comparison]
    judgments: dict[int, Judgment]
    truths: list[Outcome]

    @property
    def judge_wrong(self) -> list[bool]:
        return [
            judge_outcome(str(self.judgments[c.pk].verdict)) != truth
            for c, truth in zip(self.comparisons, self.truths, strict=True)
        ]


def labelled_comparisons(project: Project, judge: str) -> Labelled:
    """Routed comparisons with both labels and all the human votes they wanted.

    Pairs routed to humans by the model are as valid to train on as the audit stream: the
    router chose them from their features alone, so P(judge wrong | features) is the same on
    them (the data are missing at random given the features).
    """
    done = (
        Comparison.objects.filter(
            project=project,
            is_gold=False,
            route_decision__isnull=False,
            route__in=[Comparison.Route.HUMAN, Comparison.Route.BOTH],
            vote_count__gte=F("votes_wanted"),
        )
        .filter(judgments__judge=judge)
        .order_by("id")
    )
    comparisons = list(with_texts(done))
    truths = human_majorities(c.pk for c in comparisons)
    comparisons = [c for c in comparisons if c.pk in truths]
    judgments = judgments_by_comparison((c.pk for c in comparisons), judge)
    return Labelled(comparisons, judgments, [truths[c.pk] for c in comparisons])


def current_fit(project: Project, judge: str) -> DisagreementFit | None:
    return DisagreementFit.objects.filter(project=project, judge=judge).first()


# --- the router page --------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion; None without observations."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class AuditAgreement:
    pairs: int
    agree: int
    interval: tuple[float, float] | None

    @property
    def rate(self) -> float | None:
        return self.agree / self.pairs if self.pairs else None


def audit_agreement(project: Project, judge: str) -> AuditAgreement:
    """Judge-human agreement on the random audit stream only (route `both`): unbiased."""
    audited = list(
        Comparison.objects.filter(
            project=project,
            route_decision__reason=RouteDecision.Reason.AUDIT,
            vote_count__gte=F("votes_wanted"),
        ).values_list("pk", flat=True)
    )
    truths = human_majorities(audited)
    verdicts = dict(
        Judgment.objects.filter(judge=judge, comparison_id__in=list(truths)).values_list(
            "comparison_id", "verdict"
        )
    )
    agree = sum(judge_outcome(verdicts[pk]) == truths[pk] for pk in verdicts)
    return AuditAgreement(len(verdicts), agree, wilson_interval(agree, len(verdicts)))


@dataclass(frozen=True, slots=True)
class RouterOverview:
    policy: RoutingPolicy
    routes: dict[str, int]
    pending_unjudged: int
    human_share: float | None
    budget_comparisons: int | None
    human_votes_today: int
    audit: AuditAgreement
    final_sources: dict[str, int]
    final_accuracy: float | None
    final_accuracy_interval: tuple[float, float] | None
    model_accuracy_judge_only: float | None
    fit: DisagreementFit | None


def router_overview(project: Project, policy: RoutingPolicy) -> RouterOverview:
    """The figures admins watch: who labels what, budget used, how far the judge is trusted."""
    from routing.services import budget_left_today  # noqa: PLC0415 - services read selectors

    routes = Counter(
        dict(
            Comparison.objects.filter(project=project, is_gold=False)
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
    audit = audit_agreement(project, policy.judge)
    finals = final_labels(project, policy.judge)
    sources = Counter(label.source for label in finals)
    labelled = sources["human"] + sources["judge"]
    accuracy = interval = None
    if labelled and audit.rate is not None and audit.interval is not None:
        # Human-labelled pairs are the ground truth; judge-labelled ones are right as often as
        # the judge agrees with humans on the unselected audit stream.
        def blend(rate: float) -> float:
            return (sources["human"] + sources["judge"] * rate) / labelled

        accuracy = blend(audit.rate)
        interval = (blend(audit.interval[0]), blend(audit.interval[1]))
    judge_only = decided.filter(route="judge")
    model_accuracy = None
    if judge_only.exists():
        total = sum(judge_only.values_list("p_disagree", flat=True))
        model_accuracy = 1.0 - total / judge_only.count()
    budget = None
    if policy.budget_kind == RoutingPolicy.BudgetKind.SHARE:
        budget = round(policy.budget_share * n_decided)
    return RouterOverview(
        policy=policy,
        routes={route: routes.get(route, 0) for route in Comparison.Route.values},
        pending_unjudged=unjudged,
        human_share=n_human / n_decided if n_decided else None,
        budget_comparisons=budget,
        human_votes_today=budget_left_today(project, policy).votes_today,
        audit=audit,
        final_sources=dict(sources),
        final_accuracy=accuracy,
        final_accuracy_interval=interval,
        model_accuracy_judge_only=model_accuracy,
        fit=current_fit(project, policy.judge),
    )


def waiting_for_humans(project: Project, *, limit: int = 50) -> QuerySet[RouteDecision]:
    """Routed to people and still short of votes, the most valuable first."""
    return (
        RouteDecision.objects.filter(
            comparison__project=project,
            route__in=["human", "both"],
            comparison__vote_count__lt=F("comparison__votes_wanted"),
        )
        .select_related("comparison__prompt")
        .order_by("-priority", "id")[:limit]
    )


def open_human_slots(project: Project) -> int:
    """Votes still owed to comparisons already routed to humans."""
    rows = Comparison.objects.filter(
        Q(route=Comparison.Route.HUMAN) | Q(route=Comparison.Route.BOTH),
        project=project,
        is_gold=False,
        route_decision__isnull=False,
        vote_count__lt=F("votes_wanted"),
    ).values_list("votes_wanted", "vote_count")
    return sum(wanted - count for wanted, count in rows)


def routable(project: Project, judge: str) -> QuerySet[Comparison]:
    """Pending comparisons the judge has already labelled."""
    return Comparison.objects.filter(
        project=project,
        route=Comparison.Route.PENDING,
        is_gold=False,
        route_decision__isnull=True,
        judgments__judge=judge,
    )
