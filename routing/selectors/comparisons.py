"""Reads for routing: comparisons as the pure router sees them, the judge's verdicts, human
majorities, each comparison's final label, and what the human budget has left."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from annotation.models import Annotator, Comparison, Project, Prompt, Vote
from models_backend.models import Judgment
from routing.consensus import Verdict
from routing.evaluation import Outcome, human_majority, judge_outcome
from routing.features import RoutingPair, conversation_of
from routing.models import DisagreementFit, RouteDecision, RoutingPolicy

INCONSISTENT = "tie (inconsistent)"


def policy_for(project: Project) -> RoutingPolicy | None:
    return RoutingPolicy.objects.filter(project=project).first()


def judge_has_verdicts(project: Project, judge: str) -> bool:
    return Judgment.objects.filter(comparison__project=project, judge=judge).exists()


def judge_routed_count(project: Project, judge: str) -> int:
    """How many comparisons routed on `judge`'s verdicts have it as their final label: those
    routed to it alone, and those routed to people who have not voted yet."""
    return RouteDecision.objects.filter(
        comparison__project=project, judge=judge, comparison__vote_count=0
    ).count()


def policy_draft(project: Project) -> RoutingPolicy:
    """The policy the router page offers before one is saved: the defaults, reading the judge
    with the most verdicts in the arena (say, imported ones) if any judge has given some."""
    draft = RoutingPolicy(project=project)
    busiest = (
        Judgment.objects.filter(comparison__project=project)
        .values_list("judge", flat=True)
        .annotate(n=Count("id"))
        .order_by("-n", "judge")
        .first()
    )
    if busiest:
        draft.judge = busiest
    return draft


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
    judge: str | None = None  # whose verdict a "judge" label is


def deciding_judges(comparison_ids: Iterable[int], judge: str) -> dict[int, str]:
    """Whose verdict labels each comparison that people did not: the judge its routing
    decision read (a policy that later names another judge does not relabel routed pairs),
    else `judge`, the policy's."""
    ids = list(comparison_ids)
    decided = dict(
        RouteDecision.objects.filter(comparison_id__in=ids).values_list("comparison_id", "judge")
    )
    return {pk: decided.get(pk, judge) for pk in ids}


def final_labels(project: Project, judge: str) -> list[FinalLabel]:
    """Per comparison: the human majority where humans voted, else the verdict of the judge
    that the router gave it to (`deciding_judges`; `judge` for pairs not routed yet)."""
    ids = list(
        Comparison.objects.for_project(project).rated().order_by("id").values_list("pk", flat=True)
    )
    humans = human_majorities(ids)
    judges = deciding_judges(ids, judge)
    verdicts = {
        (pk, name): verdict
        for pk, name, verdict in Judgment.objects.filter(
            judge__in=set(judges.values()), comparison_id__in=ids
        ).values_list("comparison_id", "judge", "verdict")
    }
    labels = []
    for pk in ids:
        verdict = verdicts.get((pk, judges[pk]))
        if pk in humans:
            labels.append(FinalLabel(pk, humans[pk], "human"))
        elif verdict is not None:
            labels.append(FinalLabel(pk, judge_outcome(verdict), "judge", judges[pk]))
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
class DailyBudget:
    votes_today: int
    open_slots: int
    votes_left: int


def budget_left_today(project: Project, policy: RoutingPolicy) -> DailyBudget:
    """Human votes a daily budget can still pay for today: votes cast here today and the
    votes already promised to open human pairs are spent."""
    start_of_today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    # Imported votes were cast elsewhere (stored at the import's time when it was not known):
    # the day's budget did not pay for them.
    votes_today = (
        Vote.objects.filter(
            comparison__project=project, comparison__is_gold=False, created_at__gte=start_of_today
        )
        .exclude(source=Vote.Source.IMPORT)
        .count()
    )
    open_slots = open_human_slots(project)
    left = max(0, policy.daily_human_votes - votes_today - open_slots)
    return DailyBudget(votes_today, open_slots, left)


def waiting_for_humans(project: Project) -> QuerySet[RouteDecision]:
    """Routed to people and still short of votes, the most valuable first."""
    return (
        RouteDecision.objects.filter(
            comparison__project=project,
            route__in=["human", "both"],
            comparison__vote_count__lt=F("comparison__votes_wanted"),
        )
        .select_related("comparison__prompt")
        .order_by("-priority", "id")
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
