"""Reads of the arena, with the access checks every view goes through."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Greatest, Length, Round
from django.http import Http404
from django.utils import timezone

from annotation import ratings
from annotation.models import (
    Annotator,
    Candidate,
    Comparison,
    EloRating,
    LeaderboardSnapshot,
    Membership,
    ModelEntry,
    Project,
    Prompt,
    Vote,
)
from models_backend.models import Judgment

STAFF_ROLES = (Membership.Role.RESEARCHER, Membership.Role.ADMIN)


def project_role(user: AbstractBaseUser | AnonymousUser, project: Project) -> str | None:
    """The user's role in the project: a membership role, "admin" for superusers, else None."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Membership.Role.ADMIN
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def get_project_for_user(
    user: AbstractBaseUser | AnonymousUser, slug: str, *, staff: bool = False, admin: bool = False
) -> Project:
    """The project an arena URL names, if this user may see it.

    Inactive projects are visible to their staff only; `staff=True` asks for a researcher or
    admin role (leaderboards, exports), `admin=True` an admin role (annotator review, the router).
    Raises Http404 / PermissionDenied.
    """
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise Http404("No such arena.")
    role = project_role(user, project)
    if admin and role != Membership.Role.ADMIN:
        if not user.is_authenticated:
            raise PermissionDenied("Log in as an admin of this arena.")
        raise PermissionDenied("Only admins of this arena may see this.")
    if staff and role not in STAFF_ROLES:
        if not user.is_authenticated:
            raise PermissionDenied("Log in as a researcher or admin of this arena.")
        raise PermissionDenied("Only researchers and admins of this arena may see this.")
    if not project.is_active and role not in STAFF_ROLES:
        raise Http404("No such arena.")
    return project


def projects_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    return Project.objects.filter(is_active=True).order_by("title")


def last_vote_for_reveal(*, annotator: Annotator, token: str | None) -> Vote | None:
    """The annotator's vote on the pair with this token, to reveal the model names."""
    if not token:
        return None
    # Small queries rather than one seven-table join, which costs more to plan than to run.
    vote = (
        Vote.objects.filter(assignment__token=token, assignment__annotator=annotator)
        .select_related("comparison")
        .first()
    )
    if vote is None:
        return None
    load_candidates(vote.comparison)
    return vote


def load_candidates(comparison: Comparison) -> Comparison:
    """Attach both candidates and their models to the comparison, in one two-table query."""
    candidates = Candidate.objects.select_related("model").in_bulk(
        [comparison.candidate_a_id, comparison.candidate_b_id]
    )
    comparison.candidate_a = candidates[comparison.candidate_a_id]
    comparison.candidate_b = candidates[comparison.candidate_b_id]
    return comparison


def elo_table(project: Project) -> QuerySet[EloRating]:
    return EloRating.objects.filter(project=project).select_related("model").order_by("-rating")


def annotator_vote_count(*, annotator: Annotator, project: Project) -> int:
    return Vote.objects.filter(annotator=annotator, comparison__project=project).count()


# --- leaderboards -----------------------------------------------------------------------

# `final`: human votes where people voted, else the judge's verdicts (the router's final labels).
SOURCES = ("human", "judge", "all", "final")
# A weak Gaussian prior on strengths (sd about 3 logits, 550 rating points): invisible with
# real vote counts, but keeps a model that never lost (or never won) at a finite rating.
LEADERBOARD_RIDGE = 0.1


@dataclass(frozen=True)
class LeaderboardFilters:
    """Which labels a leaderboard counts. The default: human votes of non-flagged annotators."""

    source: str = "human"
    include_flagged: bool = False
    since: datetime | None = None
    until: datetime | None = None
    category: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {self.source!r}")

    @property
    def is_default_window(self) -> bool:
        return self.since is None and self.until is None


def _human_votes(project: Project, filters: LeaderboardFilters) -> QuerySet[Vote]:
    # Semi-join on the project's comparisons and an id list of the (few) excluded annotators:
    # no join per vote row, which halves the aggregation time at a million votes.
    votes = Vote.objects.filter(
        comparison_id__in=Comparison.objects.for_project(project).rated().values("pk")
    )
    if not filters.include_flagged:
        excluded = list(
            Annotator.objects.exclude(state=Annotator.State.ACTIVE).values_list("pk", flat=True)
        )
        if excluded:
            votes = votes.exclude(annotator_id__in=excluded)
    return _in_window(votes, filters)


def excluded_vote_count(project: Project, filters: LeaderboardFilters) -> int:
    """Human votes the filters would count but for their annotators being flagged or banned:
    what an empty board has to say it left out."""
    if filters.include_flagged or filters.source == "judge":
        return 0
    every = _human_votes(project, replace(filters, include_flagged=True))
    return every.exclude(annotator__state=Annotator.State.ACTIVE).count()


def _judgments(project: Project, filters: LeaderboardFilters) -> QuerySet[Judgment]:
    judgments = Judgment.objects.filter(comparison__project=project, comparison__is_gold=False)
    if filters.source == "final":
        # The judge speaks only where no counted human vote exists (in any date window), and
        # only the judge the project's router reads when it has one (for a routed pair, the one
        # the router gave it to): one verdict per pair.
        humans = _human_votes(project, LeaderboardFilters(include_flagged=filters.include_flagged))
        judgments = judgments.filter(
            ~Exists(humans.filter(comparison_id=OuterRef("comparison_id")))
        )
        judge = router_judge(project)
        if judge:
            judgments = judgments.filter(
                Q(comparison__route_decision__isnull=True, judge=judge)
                | Q(judge=F("comparison__route_decision__judge"))
            )
    return _in_window(judgments, filters)


def router_judge(project: Project) -> str | None:
    """The judge the project's router reads, when it has a routing policy (no import of the
    routing app: the reverse relation is enough)."""
    return (
        Project.objects.filter(pk=project.pk)
        .values_list("routing_policy__judge", flat=True)
        .first()
    )


def labels_dated(labels: QuerySet, since: datetime | None, until: datetime | None) -> QuerySet:
    """Votes or judgments given in [since, until); either bound may be None.

    A label imported without its time is stored at the import's time, so a date range takes
    none of them (exports show their time as null)."""
    if since is not None or until is not None:
        labels = labels.filter(time_recorded=True)
    if since is not None:
        labels = labels.filter(created_at__gte=since)
    if until is not None:
        labels = labels.filter(created_at__lt=until)
    return labels


def _in_window(labels: QuerySet, filters: LeaderboardFilters) -> QuerySet:
    """Votes or judgments restricted to the filters' date range and category."""
    labels = labels_dated(labels, filters.since, filters.until)
    if filters.category:
        labels = labels.filter(comparison__prompt__category=filters.category)
    return labels


def _grouped(queryset: QuerySet, outcome: str, extra: tuple[str, ...] = ()) -> list[tuple]:
    """(model a id, model b id, outcome, *extra, count) rows, grouped in the database.

    The big GROUP BY runs per comparison (no joins out to candidates and models on every
    vote); comparisons are then mapped to their models and merged, which is cheap.
    """
    per_comparison = (
        queryset.values_list("comparison_id", outcome, *extra).annotate(n=Count("*")).order_by()
    )
    rows = list(per_comparison)
    models_of = dict(
        (pk, (a, b))
        for pk, a, b in Comparison.objects.filter(pk__in={row[0] for row in rows}).values_list(
            "pk", "candidate_a__model_id", "candidate_b__model_id"
        )
    )
    merged: Counter[tuple] = Counter()
    for comparison_id, *key, n in rows:
        merged[(*models_of[comparison_id], *key)] += n
    return [(*key, n) for key, n in merged.items()]


def battle_counts(project: Project, filters: LeaderboardFilters) -> ratings.BattleCounts:
    """Aggregated (model a, model b, outcome) counts, computed by a GROUP BY in SQL."""
    rows: list[tuple] = []
    if filters.source in ("human", "all", "final"):
        rows += _grouped(_human_votes(project, filters), "winner")
    if filters.source in ("judge", "all", "final"):
        rows += _grouped(_judgments(project, filters), "verdict")
    names = dict(ModelEntry.objects.filter(project=project).values_list("pk", "name"))
    return ratings.BattleCounts.from_rows(
        (names[a], names[b], outcome, n) for a, b, outcome, n in rows
    )


def _length_bin_expression(bins_per_unit: int) -> Func:
    def chars(side: str) -> Func:
        return Cast(Length(Cast(f"comparison__{side}__responses", TextField())), FloatField())

    la, lb = chars("candidate_a"), chars("candidate_b")
    return Cast(
        Round(Value(float(bins_per_unit)) * (la - lb) / Greatest(la + lb, Value(1.0))),
        IntegerField(),
    )


def length_battle_counts(
    project: Project, filters: LeaderboardFilters
) -> ratings.LengthBattleCounts:
    """Counts per (model a, model b, outcome, length-difference bin), for style control."""
    bins = ratings.LENGTH_BINS_PER_UNIT
    rows: list[tuple] = []
    if filters.source in ("human", "all", "final"):
        votes = _human_votes(project, filters).annotate(length_bin=_length_bin_expression(bins))
        rows += _grouped(votes, "winner", ("length_bin",))
    if filters.source in ("judge", "all", "final"):
        judgments = _judgments(project, filters).annotate(length_bin=_length_bin_expression(bins))
        rows += _grouped(judgments, "verdict", ("length_bin",))
    names = dict(ModelEntry.objects.filter(project=project).values_list("pk", "name"))
    return ratings.LengthBattleCounts.from_rows(
        ((names[a], names[b], outcome, length_bin, n) for a, b, outcome, length_bin, n in rows),
        bins_per_unit=bins,
    )


def latest_snapshot(project: Project, *, category: str = "") -> LeaderboardSnapshot | None:
    """The newest stored default leaderboard (human votes, flagged excluded)."""
    return (
        LeaderboardSnapshot.objects.filter(
            project=project, source="human", include_flagged=False, category=category
        )
        .order_by("-created_at")
        .first()
    )


def rating_history(project: Project, *, limit: int = 200) -> dict[str, list[tuple[str, float]]]:
    """Each model's rating over the newest default snapshots, oldest first."""
    snapshots = list(
        LeaderboardSnapshot.objects.filter(
            project=project, source="human", include_flagged=False, category=""
        )
        .order_by("-created_at")
        .values_list("created_at", "rows")[:limit]
    )
    history: dict[str, list[tuple[str, float]]] = {}
    for created_at, rows in reversed(snapshots):
        for row in rows:
            history.setdefault(row["model"], []).append((created_at.isoformat(), row["rating"]))
    return history


def project_categories(project: Project) -> list[str]:
    return list(
        Prompt.objects.filter(project=project)
        .exclude(category="")
        .values_list("category", flat=True)
        .distinct()
        .order_by("category")
    )


@dataclass(frozen=True)
class LeaderboardResult:
    board: ratings.Leaderboard
    counts: ratings.BattleCounts
    timings: dict[str, float]


def leaderboard_compute(
    project: Project,
    filters: LeaderboardFilters,
    *,
    bootstrap_rounds: int = 1000,
    ci: str = "bootstrap",
    seed: int = 0,
    style_control: bool = False,
) -> LeaderboardResult:
    """Fit the Bradley-Terry leaderboard on SQL-aggregated counts; times every step."""
    started = time.perf_counter()
    if style_control:
        length_counts = length_battle_counts(project, filters)
        aggregated = time.perf_counter() - started
        board = ratings.length_controlled_leaderboard(
            length_counts, bootstrap_rounds=bootstrap_rounds, ci=ci, seed=seed
        )
        counts = length_counts.cells
    else:
        counts = battle_counts(project, filters)
        aggregated = time.perf_counter() - started
        board = ratings.leaderboard(
            counts, bootstrap_rounds=bootstrap_rounds, ci=ci, seed=seed, ridge=LEADERBOARD_RIDGE
        )
    timings = {"sql_aggregate": aggregated, **board.timings}
    timings["total"] = time.perf_counter() - started
    return LeaderboardResult(board=board, counts=counts, timings=timings)


def json_number(value: float) -> float | None:
    """A float for JSON: NaN and infinities (no battles, no finite rating) become None."""
    return float(value) if math.isfinite(value) else None


def json_matrix(values: np.ndarray) -> list[list[float | None]]:
    return [[json_number(v) for v in row] for row in values.tolist()]


@dataclass(frozen=True)
class SnapshotView:
    """What the leaderboard page shows, from a stored snapshot or a fresh computation."""

    rows: list[dict]
    models: list[str]
    win_rates: list[list[float | None]]
    vote_count: int
    computed_at: datetime
    timings: dict[str, float]
    stored: bool

    @classmethod
    def from_snapshot(cls, snapshot: LeaderboardSnapshot) -> SnapshotView:
        return cls(
            rows=snapshot.rows,
            models=snapshot.models_order,
            win_rates=snapshot.win_rates,
            vote_count=snapshot.vote_count,
            computed_at=snapshot.created_at,
            timings=snapshot.timings,
            stored=True,
        )

    @classmethod
    def from_result(cls, result: LeaderboardResult) -> SnapshotView:
        counts = result.counts
        return cls(
            rows=result.board.rows,
            models=list(counts.models),
            win_rates=json_matrix(ratings.win_rate_matrix(counts)) if counts.total_votes else [],
            vote_count=counts.total_votes,
            computed_at=timezone.now(),
            timings=result.timings,
            stored=False,
        )

    @property
    def groups(self) -> int:
        """How many groups of models never compared with each other the board holds (a
        snapshot stored before groups were counted holds one)."""
        return len({row.get("group", 1) for row in self.rows})
