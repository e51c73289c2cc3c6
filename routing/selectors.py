"""Reads for the router: comparisons as the pure router sees them, human majorities, the
final label of each comparison, and the figures of a project's router page."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from django.db.models import Avg, Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation.models import Annotator, Comparison, Project, Prompt, Vote
from models_backend.models import Judgment
from routing.allocation import DEFAULT_AUDIT_FRACTION
from routing.audit import judge_labels_right, weighted_interval
from routing.consensus import Verdict
from routing.disagreement import ColdStartRule, DisagreementModel
from routing.evaluation import Outcome, human_majority, judge_outcome
from routing.features import RoutingPair, conversation_of, feature_meaning
from routing.models import DisagreementFit, RouteDecision, RoutingPolicy

# How the router writes a verdict that flipped when the answers were swapped (MT-Bench's name).
INCONSISTENT = "tie (inconsistent)"


def policy_for(project: Project) -> RoutingPolicy | None:
    return RoutingPolicy.objects.filter(project=project).first()


def judgments_by_comparison(
    comparison_ids: Iterable[int], judge: str
) -> tuple[dict[int, Judgment], dict[int, tuple[str, ...]]]:
    """In one query: `judge`'s judgment per comparison, and every other judge's verdict as the
    router reads it."""
    mine: dict[int, Judgment] = {}
    others: defaultdict[int, list[str]] = defaultdict(list)
    rows = Judgment.objects.filter(comparison_id__in=list(comparison_ids)).order_by("judge")
    for judgment in rows:
        if judgment.judge == judge:
            mine[judgment.comparison_id] = judgment
        else:
            others[judgment.comparison_id].append(router_label(judgment) or "")
    return mine, {pk: tuple(found) for pk, found in others.items()}


def router_label(judgment: Judgment | None) -> str | None:
    """The verdict as the router reads it: a flip between the two orders is `inconsistent`."""
    if judgment is None:
        return None
    return str(judgment.verdict) if judgment.consistent else INCONSISTENT


def _prob_a(p_a: float, p_b: float) -> float | None:
    total = p_a + p_b
    return p_a / total if total > 0 else None


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
    conversation, turn = prompt_conversation(prompt.turns)
    return RoutingPair(
        id=str(comparison.pk),
        prompt=prompt.text,
        response_a=comparison.candidate_a.text,
        response_b=comparison.candidate_b.text,
        llm_label=router_label(judgment),
        llm_prob_a=prob_a,
        llm_prob_a_orders=orders,
        category=prompt.category or None,
        turn=turn,
        has_reference=bool(prompt.reference_answer),
        model_a=str(comparison.candidate_a.model_id),
        model_b=str(comparison.candidate_b.model_id),
        other_labels=others,
        prompt_key=str(comparison.prompt_id),
        conversation_key=conversation,
    )


def prompt_conversation(turns: object) -> tuple[str | None, int]:
    """(the conversation a prompt's turns belong to, or None; its turn in it)."""
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], str):
        return None, 1
    return conversation_of(turns[0]), len(turns)


def _conversations(project: Project) -> dict[int, tuple[str | None, int]]:
    """Each prompt's conversation and turn, one row per prompt (not per verdict)."""
    return {
        pk: prompt_conversation(turns)
        for pk, turns in Prompt.objects.filter(project=project).values_list("pk", "turns")
    }


def judge_verdicts(project: Project, judge: str) -> list[Verdict]:
    """Every verdict of `judge` in the project, as the consensus features read them: which
    models met on which prompt, at which turn of which conversation, and who won (models and
    prompts by id), in two queries."""
    conversations = _conversations(project)
    rows = Judgment.objects.filter(
        judge=judge, comparison__project=project, comparison__is_gold=False
    ).values_list(
        "comparison_id",
        "comparison__prompt_id",
        "comparison__prompt__category",
        "comparison__candidate_a__model_id",
        "comparison__candidate_b__model_id",
        "verdict",
        "consistent",
    )
    return [
        Verdict(
            str(pk),
            str(prompt),
            category or None,
            str(model_a),
            str(model_b),
            str(verdict) if consistent else INCONSISTENT,
            *conversations.get(prompt, (None, None)),
        )
        for pk, prompt, category, model_a, model_b, verdict, consistent in rows
    ]


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
        winners[comparison_id].append({"winner": judge_outcome(winner)})
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
        Comparison.objects.for_project(project).rated().order_by("id").values_list("pk", flat=True)
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
    others: dict[int, tuple[str, ...]]

    @property
    def judge_wrong(self) -> list[bool]:
        return [
            judge_outcome(str(self.judgments[c.pk].verdict)) != truth
            for c, truth in zip(self.comparisons, self.truths, strict=True)
        ]


def finished_comparisons(project: Project, judge: str) -> QuerySet[Comparison]:
    """Routed to people, all their votes in, and judged by `judge`."""
    return Comparison.objects.filter(
        project=project,
        is_gold=False,
        route_decision__isnull=False,
        route__in=[Comparison.Route.HUMAN, Comparison.Route.BOTH],
        vote_count__gte=F("votes_wanted"),
        judgments__judge=judge,
    )


def labelled_comparisons(project: Project, judge: str) -> Labelled:
    """Routed comparisons with both labels and all the human votes they wanted.

    Pairs routed to humans by the model are as valid to train on as the audit stream: the
    router chose them from their features alone, so P(judge wrong | features) is the same on
    them (the data are missing at random given the features).
    """
    comparisons = list(with_texts(finished_comparisons(project, judge).order_by("id")))
    truths = human_majorities(c.pk for c in comparisons)
    comparisons = [c for c in comparisons if c.pk in truths]
    judgments, others = judgments_by_comparison((c.pk for c in comparisons), judge)
    return Labelled(comparisons, judgments, [truths[c.pk] for c in comparisons], others)


def current_fit(project: Project, judge: str) -> DisagreementFit | None:
    return DisagreementFit.objects.filter(project=project, judge=judge).first()


@dataclass(frozen=True, slots=True)
class FeatureRow:
    name: str
    value: float
    meaning: str
    # Share of the logit (+ towards a human label), when a fitted model made the decision.
    contribution: float | None = None


def decision_explanation(decision: RouteDecision) -> list[FeatureRow]:
    """The decision's features with what each means and, when the fitted model decided, how
    much each pushed the pair towards people (+) or the judge (-), largest first."""
    fit = decision.fit
    model = None
    if fit is not None and fit.kind == DisagreementFit.Kind.LOGISTIC:
        model = DisagreementModel.from_params(fit.params)
        if set(model.names) != set(decision.features):
            model = None  # the fit is from another version of the features
    shares = model.contributions(decision.features) if model is not None else {}
    rows = [
        FeatureRow(name, float(value), feature_meaning(name), shares.get(name))
        for name, value in decision.features.items()
    ]
    if shares:
        rows.sort(key=lambda row: -abs(row.contribution or 0.0))
    else:  # the cold-start rule: what it reads first, then the rest by name
        rows.sort(key=lambda row: (row.name not in ColdStartRule.COLUMNS, row.name))
    return rows


@dataclass(frozen=True, slots=True)
class OtherTurn:
    """The judge's verdict on the same two models at another turn of the conversation, with
    its sides turned to the decided pair's: `verdict` is "A" or "B" (the decided pair's
    answer of that model), "tie", "flipped" (changed with the order) or "" (none)."""

    comparison_id: int
    turns: int
    verdict: str
    routed: bool


def other_turns(decision: RouteDecision) -> list[OtherTurn]:
    """The judge's current verdicts on the same two models at the other turns of the decided
    pair's conversation (prompts that open with the same user turn; the feature
    `conversation_agree` read those that existed when the pair was routed), each with the
    decision's judge's verdict, first turns first."""
    comparison = decision.comparison
    conversation, turn = prompt_conversation(comparison.prompt.turns)
    if conversation is None:
        return []
    model_a, model_b = comparison.candidate_a.model_id, comparison.candidate_b.model_id
    same_models = Q(candidate_a__model_id=model_a, candidate_b__model_id=model_b) | Q(
        candidate_a__model_id=model_b, candidate_b__model_id=model_a
    )
    candidates = (
        Comparison.objects.filter(
            same_models,
            project_id=comparison.project_id,
            is_gold=False,
            prompt__turns__0=comparison.prompt.turns[0],  # narrows; the key below decides
        )
        .exclude(prompt_id=comparison.prompt_id)
        .select_related("prompt", "candidate_a")
    )
    # Another turn, as the feature counts them: a copy of the prompt (as many turns) is not.
    others = []
    for other in candidates:
        other_conversation, other_turn = prompt_conversation(other.prompt.turns)
        if other_conversation == conversation and other_turn != turn:
            others.append(other)
    verdicts = {
        j.comparison_id: router_label(j)
        for j in Judgment.objects.filter(comparison__in=others, judge=decision.judge)
    }
    routed = set(
        RouteDecision.objects.filter(comparison__in=others).values_list("comparison_id", flat=True)
    )
    rows = [
        OtherTurn(
            other.pk,
            len(other.prompt.turns),
            _seen_from(verdicts.get(other.pk) or "", other.candidate_a.model_id == model_a),
            other.pk in routed,
        )
        for other in others
    ]
    return sorted(rows, key=lambda row: (row.turns, row.comparison_id))


def _seen_from(label: str, same_sides: bool) -> str:
    """A verdict on another comparison of the same two models as the decided pair's side that
    won ("A" or "B"), or "tie", "flipped", "" (none)."""
    if label in ("model_a", "model_b"):
        return "A" if (label == "model_a") == same_sides else "B"
    return {"": "", INCONSISTENT: "flipped"}.get(label, "tie")


# --- the router page --------------------------------------------------------------------


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
    # The same per prompt category, the least trusted first.
    by_category: tuple[CategoryAgreement, ...] = ()


def audit_agreement(project: Project, judge: str) -> AuditAgreement:
    """Judge-human agreement on the random audit stream only (route `both`), each pair
    weighted by 1 / its chance of an audit: unbiased. Also per prompt category: where the
    judge can be trusted and where it cannot."""
    audited = {
        pk: (p, category, chance)
        for pk, p, category, chance in Comparison.objects.filter(
            project=project,
            route_decision__reason=RouteDecision.Reason.AUDIT,
            vote_count__gte=F("votes_wanted"),
        ).values_list(
            "pk",
            "route_decision__p_disagree",
            "prompt__category",
            "route_decision__audit_chance",
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
        by_category=tuple(by_category),
    )


def _uniform_chance(project: Project) -> float:
    """The audit chance of a decision written without one (none since migration 0003 filled
    them in): audits were uniform then, at the policy's audit share."""
    share = (
        RoutingPolicy.objects.filter(project=project).values_list("audit_fraction", flat=True)
    ).first()
    return share or DEFAULT_AUDIT_FRACTION


def final_sources(project: Project, judge: str) -> dict[str, int]:
    """How many comparisons' final label comes from people, the judge, or nobody yet (SQL)."""
    counted = Vote.objects.filter(
        comparison=OuterRef("pk"), annotator__state=Annotator.State.ACTIVE
    )
    verdict = Judgment.objects.filter(comparison=OuterRef("pk"), judge=judge)
    rows = (
        Comparison.objects.for_project(project)
        .rated()
        .annotate(human=Exists(counted), judged=Exists(verdict))
        .values_list("human", "judged")
        .annotate(n=Count("*"))
        .order_by()
    )
    sources: Counter[str] = Counter()
    for human, judged, n in rows:
        sources["human" if human else "judge" if judged else "none"] += n
    return {source: sources[source] for source in ("human", "judge", "none") if sources[source]}


def final_accuracy(
    project: Project, judge: str, audit: AuditAgreement
) -> tuple[float, tuple[float, float]] | None:
    """Estimated share of right final labels, with a 95% interval, or None before audits.

    Human labels count as right (they define the truth); the judge-labelled ones as often as
    the judge agreed on audited pairs of the same predicted risk (`judge_labels_right`).
    """
    if not audit.pairs or audit.interval is None:
        return None
    counted = Vote.objects.filter(
        comparison=OuterRef("pk"), annotator__state=Annotator.State.ACTIVE
    )
    judge_only = np.array(
        [
            p if p is not None else np.nan
            for p in Comparison.objects.filter(
                project=project, is_gold=False, judgments__judge=judge
            )
            .exclude(Exists(counted))
            .values_list("route_decision__p_disagree", flat=True)
        ],
        dtype=float,
    )
    humans = final_sources(project, judge).get("human", 0)
    total = humans + len(judge_only)
    if total == 0:
        return None
    scored = np.array(audit.scored, dtype=float).reshape(-1, 3)
    expected = judge_labels_right(judge_only, scored[:, 0], scored[:, 1], scored[:, 2])
    assert expected is not None  # there are audited pairs
    estimate, low, high = (humans + expected) / total
    return float(estimate), (float(low), float(high))


@dataclass(frozen=True, slots=True)
class RouterOverview:
    policy: RoutingPolicy
    routes: dict[str, int]
    pending_unjudged: int
    judges_seen: list[str]
    human_share: float | None
    budget_comparisons: int | None
    human_votes_today: int
    audit: AuditAgreement
    final_sources: dict[str, int]
    final_accuracy: float | None
    final_accuracy_interval: tuple[float, float] | None
    model_accuracy_judge_only: float | None
    fit: DisagreementFit | None

    @property
    def weighs_most(self) -> list[FeatureRow]:
        """The current fit's heaviest standardised weights (+ towards people), with what each
        feature means; empty under the cold-start rule."""
        if self.fit is None or self.fit.kind != DisagreementFit.Kind.LOGISTIC:
            return []
        weights = DisagreementModel.from_params(self.fit.params).weights()
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
    accuracy = final_accuracy(project, policy.judge, audit)
    expected_wrong = decided.filter(route="judge").aggregate(mean=Avg("p_disagree"))["mean"]
    budget = None
    if policy.budget_kind == RoutingPolicy.BudgetKind.SHARE:
        budget = round(policy.budget_share * n_decided)
    return RouterOverview(
        policy=policy,
        routes={route: routes.get(route, 0) for route in Comparison.Route.values},
        pending_unjudged=unjudged,
        judges_seen=sorted(judges.order_by().distinct()),
        human_share=n_human / n_decided if n_decided else None,
        budget_comparisons=budget,
        human_votes_today=budget_left_today(project, policy).votes_today,
        audit=audit,
        final_sources=final_sources(project, policy.judge),
        final_accuracy=accuracy[0] if accuracy else None,
        final_accuracy_interval=accuracy[1] if accuracy else None,
        model_accuracy_judge_only=1.0 - expected_wrong if expected_wrong is not None else None,
        fit=current_fit(project, policy.judge),
    )


@dataclass(frozen=True, slots=True)
class DailyBudget:
    votes_today: int
    open_slots: int
    votes_left: int


def budget_left_today(project: Project, policy: RoutingPolicy) -> DailyBudget:
    """Human votes a daily budget can still pay for today: votes cast today and the votes
    already promised to open human pairs are spent."""
    start_of_today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    votes_today = Vote.objects.filter(
        comparison__project=project, comparison__is_gold=False, created_at__gte=start_of_today
    ).count()
    open_slots = open_human_slots(project)
    left = max(0, policy.daily_human_votes - votes_today - open_slots)
    return DailyBudget(votes_today, open_slots, left)


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
