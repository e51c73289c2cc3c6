"""The labels of a project, streamed from the database one chunk of comparisons at a time.

Memory stays bounded by the chunk (its comparisons' texts and labels), not the project:
comparisons are walked by primary key, and each chunk's votes and verdicts are fetched with
one query each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet

from annotation import selectors
from annotation.exports.options import ExportOptions
from annotation.models import Annotator, Comparison, Project, Vote
from models_backend.models import Judgment

CHUNK = 500
DECISIVE = ("model_a", "model_b")


@dataclass(frozen=True)
class PairContext:
    comparison_id: int
    prompt_id: int
    prompt_external_id: str
    category: str
    turns: list[str]
    model_a: str
    model_b: str
    responses_a: list[str]
    responses_b: list[str]
    route: str
    # The router's chance of drawing the pair for its audit stream (route "both"): weight an
    # audited pair by 1 / it to estimate the judge's accuracy. None when never routed.
    audit_chance: float | None
    # Ranked so high that people label it whatever the audit draws: its audit speaks for the
    # top of the ranking, not for the judge-labelled pairs. None when never routed.
    surely_human: bool | None


@dataclass(frozen=True)
class HumanLabel:
    vote_id: int
    annotator: str
    annotator_state: str
    winner: str
    choice: str | None  # None: a decisive vote imported without its side
    left_is_a: bool | None
    time_to_vote_ms: int | None
    created_at: datetime | None  # None: imported without its time (stored: the import's)
    channel: str

    @property
    def excluded(self) -> bool:
        return self.annotator_state != Annotator.State.ACTIVE


@dataclass(frozen=True)
class JudgeLabel:
    judgment_id: int
    judge: str
    verdict: str
    p_a: float
    p_b: float
    p_tie: float
    consistent: bool
    created_at: datetime | None  # None: imported without its time (stored: the import's)

    @property
    def probabilities(self) -> tuple[float | None, float | None, float | None]:
        """(P(A), P(B), P(tie)), or Nones where the judge reported none: a verdict imported
        without probabilities stores 0 for each."""
        if self.p_a == self.p_b == self.p_tie == 0.0:
            return None, None, None
        return self.p_a, self.p_b, self.p_tie


@dataclass
class PairLabels:
    """One comparison with the labels the export counts."""

    context: PairContext
    votes: list[HumanLabel] = field(default_factory=list)
    judgments: list[JudgeLabel] = field(default_factory=list)
    # The judge whose verdict is the final label when several judged: the one the router gave
    # the pair to, else the router's current judge.
    preferred_judge: str = ""

    @property
    def counts(self) -> Counter[str]:
        return Counter(vote.winner for vote in self.votes)

    @property
    def majority(self) -> str | None:
        """The most common human label; "split" when two labels share the lead."""
        ranked = self.counts.most_common(2)
        if not ranked:
            return None
        if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
            return "split"
        return ranked[0][0]

    @property
    def agreement(self) -> float | None:
        """Share of the human votes that gave the most common label."""
        ranked = self.counts.most_common(1)
        return ranked[0][1] / len(self.votes) if ranked else None

    @property
    def judgment(self) -> JudgeLabel | None:
        """The preferred judge's verdict if it gave one, else the newest verdict."""
        return self.deciding_judgment or (self.judgments[-1] if self.judgments else None)

    @property
    def deciding_judgment(self) -> JudgeLabel | None:
        """The verdict a final label may come from: the preferred judge's only (no other judge
        stands in, as on the router page and the leaderboard); without a router, the newest."""
        if not self.preferred_judge:
            return self.judgments[-1] if self.judgments else None
        preferred = [j for j in self.judgments if j.judge == self.preferred_judge]
        return preferred[-1] if preferred else None

    @property
    def final(self) -> tuple[str | None, str | None]:
        """(label, its source): the human majority where people voted, else the judge."""
        if self.votes:
            return self.majority, "human"
        if self.deciding_judgment is not None:
            return self.deciding_judgment.verdict, "judge"
        return None, None


def _comparisons(project: Project, options: ExportOptions) -> QuerySet[Comparison]:
    comparisons = Comparison.objects.for_project(project).rated()
    if options.categories:
        comparisons = comparisons.filter(prompt__category__in=options.categories)
    if options.models:
        comparisons = comparisons.filter(
            candidate_a__model__name__in=options.models,
            candidate_b__model__name__in=options.models,
        )
    return comparisons


def count_comparisons(project: Project, options: ExportOptions) -> int:
    return _comparisons(project, options).count()


def _in_window(labels: QuerySet, options: ExportOptions) -> QuerySet:
    return selectors.labels_dated(labels, options.since, options.until)


def _wants(options: ExportOptions) -> tuple[bool, bool]:
    """Whether the export reads human votes, judge verdicts."""
    if options.format == "pairs":
        return True, True
    return options.source in ("human", "final"), options.source in ("judge", "final")


def stream_pairs(
    project: Project,
    options: ExportOptions,
    *,
    chunk: int = CHUNK,
    on_chunk: Callable[[int], None] | None = None,
    left_out: Counter[str] | None = None,
) -> Iterator[PairLabels]:
    """Every comparison of the export with at least one counted label, by id.

    ``on_chunk`` hears how many comparisons each chunk walked (for progress bars);
    ``left_out`` counts what the filters dropped: comparisons below ``min_agreement`` and the
    votes of flagged or banned annotators.
    """
    want_votes, want_judgments = _wants(options)
    # min_agreement reads the human votes whatever labels the export takes.
    read_votes = want_votes or options.min_agreement > 0
    left_out = left_out if left_out is not None else Counter()
    comparisons = _comparisons(project, options)
    router_judge = selectors.router_judge(project)
    last = 0
    while True:
        rows = list(
            comparisons.filter(pk__gt=last)
            .order_by("pk")
            .values_list(
                "pk",
                "prompt_id",
                "prompt__external_id",
                "prompt__category",
                "prompt__turns",
                "candidate_a__model__name",
                "candidate_b__model__name",
                "candidate_a__responses",
                "candidate_b__responses",
                "route",
                "route_decision__audit_chance",
                "route_decision__surely_human",
                "route_decision__judge",
            )[:chunk]
        )
        if not rows:
            return
        last = rows[-1][0]
        # The judge a routed pair was given to labels it, even after the policy names another.
        pairs = {
            row[0]: PairLabels(
                PairContext(*row[:-1]), preferred_judge=row[-1] or router_judge or ""
            )
            for row in rows
        }
        if read_votes:
            for label_row in _votes(pairs, options):
                pairs[label_row[0]].votes.append(HumanLabel(*label_row[1:]))
            if not options.include_flagged and (flagged := _flagged_votes(pairs, options)):
                left_out["votes of flagged or banned annotators"] += flagged
        if want_judgments:
            for label_row in _judgments(pairs, options):
                *label, created_at, time_recorded = label_row[1:]
                pairs[label_row[0]].judgments.append(
                    JudgeLabel(*label, created_at if time_recorded else None)
                )
        if on_chunk is not None:
            on_chunk(len(rows))
        yield from (pair for pair in pairs.values() if _kept(pair, options, want_votes, left_out))


def _kept(pair: PairLabels, options: ExportOptions, want_votes: bool, left_out: Counter) -> bool:
    """Whether the pair has a label the export takes and passes single_turn and min_agreement;
    drops the votes read for the agreement only."""
    if options.single_turn and len(pair.context.turns) > 1:
        left_out["multi-turn comparisons (single_turn)"] += 1
        return False
    agreement = pair.agreement
    # At two decimals: 0.67 keeps the two-thirds majorities (0.6667) it is meant to.
    if agreement is not None and round(agreement, 2) < options.min_agreement:
        left_out["comparisons below min_agreement"] += 1
        return False
    if not want_votes:
        pair.votes.clear()
    return bool(pair.votes or pair.judgments)


def _flagged_votes(pairs: dict[int, PairLabels], options: ExportOptions) -> int:
    votes = Vote.objects.filter(comparison_id__in=list(pairs)).exclude(
        annotator__state=Annotator.State.ACTIVE
    )
    return _in_window(votes, options).count()


def _votes(pairs: dict[int, PairLabels], options: ExportOptions) -> Iterator[tuple]:
    votes = Vote.objects.filter(comparison_id__in=list(pairs))
    if not options.include_flagged:
        votes = votes.filter(annotator__state=Annotator.State.ACTIVE)
    rows = (
        _in_window(votes, options)
        .order_by("comparison_id", "id")
        .values_list(
            "comparison_id",
            "pk",
            "annotator__pseudonym",
            "annotator__state",
            "winner",
            "choice",
            "left_is_a",
            "time_to_vote_ms",
            "created_at",
            "source",
            "side_recorded",
            "time_recorded",
        )
    )
    for *row, side_recorded, time_recorded in rows:
        if not side_recorded:  # an import that did not say which side was left
            row[5] = Vote.choice_if_recorded(row[5], side_recorded=False)
            row[6] = None
        if not time_recorded:  # nor when it was cast
            row[8] = None
        yield tuple(row)


def _judgments(pairs: dict[int, PairLabels], options: ExportOptions) -> Iterator[tuple]:
    judgments = Judgment.objects.filter(comparison_id__in=list(pairs))
    return iter(
        _in_window(judgments, options)
        .order_by("comparison_id", "created_at", "id")
        .values_list(
            "comparison_id",
            "pk",
            "judge",
            "verdict",
            "p_a",
            "p_b",
            "p_tie",
            "consistent",
            "created_at",
            "time_recorded",
        )
    )
