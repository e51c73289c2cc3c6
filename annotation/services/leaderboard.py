"""Ratings from the votes: the live Elo table, stored Bradley-Terry snapshots and the board a
page shows."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from annotation import ratings, selectors
from annotation.models import (
    Annotator,
    EloRating,
    LeaderboardSnapshot,
    ModelEntry,
    Project,
    Vote,
)
from models_backend.models import Judgment
from prefarena.celery import enqueue_on_commit

logger = logging.getLogger(__name__)


ELO_DEBOUNCE_SECONDS = 2


def elo_schedule_refresh(*, project: Project) -> None:
    """After commit, recompute the project's Elo table in a task, at most every few seconds.

    The vote request itself never touches the rating rows, so voters are not serialized.
    Redis being down (debounce cache or broker) never fails the vote: the refresh is skipped
    with a logged warning, and the first vote after Redis is back rebuilds the whole table.
    """
    from annotation.tasks import elo_refresh_task  # noqa: PLC0415 - tasks import services

    if settings.CELERY_TASK_ALWAYS_EAGER:
        enqueue_on_commit(elo_refresh_task, project_pk=project.pk)
        return
    try:
        due = cache.add(f"elo-refresh:{project.pk}", 1, timeout=ELO_DEBOUNCE_SECONDS)
    except RedisError:
        logger.warning("Redis is unavailable: live Elo refresh of project %s skipped", project.pk)
        return
    if due:
        enqueue_on_commit(elo_refresh_task, countdown=ELO_DEBOUNCE_SECONDS, project_pk=project.pk)


def counted_votes(project: Project) -> Q:
    """Votes that count for ratings: active annotators' votes on pairs that are not gold."""
    return Q(
        comparison__project=project,
        comparison__is_gold=False,
        annotator__state=Annotator.State.ACTIVE,
    )


@transaction.atomic
def elo_refresh(*, project: Project) -> int:
    """Recompute online Elo (FastChat: K=4, scale 400, base 10, init 1000) over all counted
    votes in the order they were cast, and store the table. Safe to run more than once:
    it always rebuilds from the votes. Returns the number of votes applied."""
    model_ids = list(ModelEntry.objects.filter(project=project).values_list("pk", flat=True))
    state = {pk: ratings.ELO_INITIAL for pk in model_ids}
    votes = {pk: 0 for pk in model_ids}
    wins = {pk: 0 for pk in model_ids}
    rows = (
        Vote.objects.filter(counted_votes(project))
        .order_by("id")
        .values_list(
            "comparison__candidate_a__model_id", "comparison__candidate_b__model_id", "winner"
        )
    )
    applied = 0
    for model_a, model_b, winner in rows.iterator(chunk_size=5000):
        score_a = ratings.winner_score(winner)
        state[model_a], state[model_b] = ratings.elo_update(state[model_a], state[model_b], score_a)
        votes[model_a] += 1
        votes[model_b] += 1
        if score_a == 1.0:
            wins[model_a] += 1
        elif score_a == 0.0:
            wins[model_b] += 1
        applied += 1
    now = timezone.now()
    EloRating.objects.bulk_create(
        [
            EloRating(
                project=project,
                model_id=pk,
                rating=state[pk],
                votes=votes[pk],
                wins=wins[pk],
                updated_at=now,
            )
            for pk in model_ids
        ],
        update_conflicts=True,
        unique_fields=["project", "model"],
        update_fields=["rating", "votes", "wins", "updated_at"],
    )
    return applied


@transaction.atomic
def leaderboard_snapshot_create(
    *,
    project: Project,
    filters: selectors.LeaderboardFilters | None = None,
    bootstrap_rounds: int = 1000,
    ci: str = "bootstrap",
) -> LeaderboardSnapshot:
    """Compute and store the project's Bradley-Terry leaderboard. Safe to run more than once:
    each call adds a snapshot (the history of ratings is the series of snapshots)."""
    filters = filters or selectors.LeaderboardFilters()
    result = selectors.leaderboard_compute(
        project, filters, bootstrap_rounds=bootstrap_rounds, ci=ci
    )
    counts = result.counts
    has_votes = counts.total_votes > 0
    snapshot = LeaderboardSnapshot(
        project=project,
        source=filters.source,
        include_flagged=filters.include_flagged,
        category=filters.category,
        method=ci,
        bootstrap_rounds=bootstrap_rounds,
        vote_count=counts.total_votes,
        rows=[
            {k: selectors.json_number(v) if isinstance(v, float) else v for k, v in row.items()}
            for row in result.board.rows
        ],
        models_order=list(counts.models),
        win_rates=selectors.json_matrix(ratings.win_rate_matrix(counts)) if has_votes else [],
        predicted_win_rates=(
            selectors.json_matrix(ratings.predicted_win_rates(result.board.strength))
            if has_votes
            else []
        ),
        battle_counts=selectors.json_matrix(ratings.battle_count_matrix(counts))
        if has_votes
        else [],
        timings=result.timings,
    )
    snapshot.full_clean()
    snapshot.save()
    return snapshot


def _labelled_since(project: Project, since: datetime | None) -> bool:
    """Whether the project has a vote or judgment newer than `since` (any, when None)."""
    votes = Vote.objects.filter(comparison__project=project)
    judgments = Judgment.objects.filter(comparison__project=project)
    if since is not None:
        votes = votes.filter(created_at__gt=since)
        judgments = judgments.filter(created_at__gt=since)
    return votes.exists() or judgments.exists()


def projects_needing_snapshot() -> list[Project]:
    """Active projects with a vote or judgment newer than their latest default snapshot."""
    due = []
    for project in Project.objects.filter(is_active=True):
        latest = selectors.latest_snapshot(project)
        if _labelled_since(project, latest.created_at if latest else None):
            due.append(project)
    return due


# In-process (no beat to store snapshots), the default board is restored on read at most this
# often while votes arrive.
EAGER_SNAPSHOT_SECONDS = 10


def leaderboard_board(
    *, project: Project, filters: selectors.LeaderboardFilters
) -> selectors.SnapshotView:
    """What a leaderboard shows: the stored snapshot for the default board (stored now if there
    is none yet, and, with no beat to refresh it, when votes came in since), any other filter
    (a category too: the beat stores only the default board) computed on the fly."""
    default = filters.source == "human" and not filters.include_flagged and not filters.category
    if default and filters.is_default_window:
        snapshot = selectors.latest_snapshot(project)
        stale = (
            snapshot is not None
            and settings.CELERY_TASK_ALWAYS_EAGER
            and timezone.now() - snapshot.created_at > timedelta(seconds=EAGER_SNAPSHOT_SECONDS)
            and _labelled_since(project, snapshot.created_at)
        )
        # Rows stored before models with few votes were marked provisional rank them as
        # established: such a snapshot is stored again, once.
        outdated = snapshot is not None and snapshot.rows and "provisional" not in snapshot.rows[0]
        if snapshot is None or stale or outdated:
            snapshot = leaderboard_snapshot_create(project=project, filters=filters)
        return selectors.SnapshotView.from_snapshot(snapshot)
    return selectors.SnapshotView.from_result(
        # As many rounds as the stored board and the command: the same intervals and ranks.
        selectors.leaderboard_compute(project, filters)
    )
