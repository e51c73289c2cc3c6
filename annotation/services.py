"""Writes of the arena: annotators, pair serving, votes, comparisons and the live Elo table.

Every service runs in one transaction and schedules side effects (tasks) only on commit.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from redis.exceptions import RedisError

from annotation import limits, ratings, selectors
from annotation.models import (
    Annotator,
    Assignment,
    Candidate,
    Comparison,
    EloRating,
    LeaderboardSnapshot,
    ModelEntry,
    Project,
    Prompt,
    Vote,
)
from models_backend.models import Judgment
from prefarena.celery import enqueue_on_commit

logger = logging.getLogger(__name__)

SESSION_ANNOTATOR_KEY = "prefarena_annotator_id"


class VoteRejected(Exception):
    """A vote that changes nothing; `status` is the HTTP status that explains it."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidChoice(VoteRejected):
    status = 400


class PairNotServed(VoteRejected):
    status = 404


class AlreadyVoted(VoteRejected):
    status = 409


class PairExpired(VoteRejected):
    status = 409


class AnnotatorBanned(VoteRejected):
    status = 403

    def __init__(self, message: str = "This account may no longer vote.") -> None:
        super().__init__(message)


class RateLimited(VoteRejected):
    """Too many votes too fast; `retry_after` is in seconds (the Retry-After header)."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ClientFingerprint:
    """Salted hashes of what identifies a client; the raw values are never stored."""

    client_hash: str
    ip_hash: str

    @classmethod
    def from_values(cls, *, ip: str, user_agent: str) -> ClientFingerprint:
        salt = settings.FINGERPRINT_SALT.encode()
        ip_hash = hashlib.sha256(salt + b"ip:" + ip.encode()).hexdigest()
        client_hash = hashlib.sha256(
            salt + b"client:" + ip.encode() + b"\0" + user_agent.encode()
        ).hexdigest()
        return cls(client_hash=client_hash, ip_hash=ip_hash)

    @classmethod
    def from_request(cls, request: HttpRequest) -> ClientFingerprint:
        return cls.from_values(
            ip=request.META.get("REMOTE_ADDR", ""),
            user_agent=request.headers.get("User-Agent", "")[:500],
        )


# --- annotators -------------------------------------------------------------------------


def annotator_get_or_create(
    *, user: AbstractBaseUser | None, session: SessionBase, project: Project
) -> Annotator | None:
    """The annotator voting in this browser; None when the project needs a login first.

    Anonymous annotators get a pseudonymous profile remembered by their session.
    """
    if user is not None and user.is_authenticated:
        annotator, _ = Annotator.objects.get_or_create(
            user=user, defaults={"pseudonym": Annotator.new_pseudonym()}
        )
        return annotator
    if project.login_required:
        return None
    annotator_id = session.get(SESSION_ANNOTATOR_KEY)
    if annotator_id is not None:
        annotator = Annotator.objects.filter(pk=annotator_id, user__isnull=True).first()
        if annotator is not None:
            return annotator
    annotator = Annotator.objects.create(pseudonym=Annotator.new_pseudonym())
    session[SESSION_ANNOTATOR_KEY] = annotator.pk
    return annotator


# --- pair serving -----------------------------------------------------------------------


def _open_assignment(*, project: Project, annotator: Annotator) -> Assignment | None:
    found = (
        Assignment.objects.filter(
            annotator=annotator,
            comparison__project=project,
            vote__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .order_by("served_at")
        .first()
    )
    return _with_texts(found) if found is not None else None


def _with_texts(assignment: Assignment, comparison: Comparison | None = None) -> Assignment:
    """The assignment with its prompt, candidates and models loaded, in small queries.

    One query joining all six tables costs PostgreSQL more to plan (about 5 ms) than to run,
    on every page; these plan in a fraction of that.
    """
    comparison = comparison or Comparison.objects.get(pk=assignment.comparison_id)
    comparison.prompt = Prompt.objects.get(pk=comparison.prompt_id)
    assignment.comparison = selectors.load_candidates(comparison)
    return assignment


def _filled_slots(now: object) -> Coalesce:
    """Votes cast plus unexpired, unvoted assignments of the outer comparison."""
    votes = (
        Vote.objects.filter(comparison=OuterRef("pk"))
        .order_by()
        .values("comparison")
        .annotate(n=Count("pk"))
        .values("n")
    )
    holds = (
        Assignment.objects.filter(comparison=OuterRef("pk"), expires_at__gt=now, vote__isnull=True)
        .order_by()
        .values("comparison")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(votes), 0) + Coalesce(Subquery(holds), 0)


@transaction.atomic
def assignment_next(*, project: Project, annotator: Annotator) -> Assignment | None:
    """Serve the annotator a comparison still needing human votes that they have not seen.

    A banned annotator is served nothing (AnnotatorBanned). Returns their open assignment if
    they have one (a reload shows the same pair). Otherwise
    the least-filled comparison is locked with SKIP LOCKED, so concurrent annotators each take
    a different row instead of queueing, and its slots (votes + live assignments) are counted
    under that lock: no comparison is handed out beyond its wanted votes. Abandoned
    assignments expire and free their slot. Returns None when nothing is left.
    """
    if annotator.state == Annotator.State.BANNED:
        # A banned account's votes would be refused; it must not hold a pair's slot either.
        raise AnnotatorBanned()
    existing = _open_assignment(project=project, annotator=annotator)
    if existing is not None:
        return existing
    now = timezone.now()
    comparison = _lock_comparison_with_room(project=project, annotator=annotator, now=now)
    if comparison is None:
        return None
    if project.gold_rate > 0 and random.random() < project.gold_rate:  # noqa: S311
        # A gold pair in place of this one, looking just like it: the annotator cannot tell.
        comparison = _gold_comparison(project=project, annotator=annotator) or comparison
    assignment = Assignment(
        comparison=comparison,
        annotator=annotator,
        left_is_a=random.random() < 0.5,  # noqa: S311 - side order, not a secret
        served_at=now,
        expires_at=now + timedelta(seconds=settings.ARENA_ASSIGNMENT_TTL_SECONDS),
    )
    # The row checks full_clean would add (both foreign keys exist, the token and the
    # (annotator, comparison) pair are unique) are four more queries; the comparison is locked,
    # the annotator is ours, and the database's constraints enforce the rest on insert.
    assignment.full_clean(
        exclude=["comparison", "annotator"], validate_unique=False, validate_constraints=False
    )
    assignment.save()
    return _with_texts(assignment, comparison)


def _gold_comparison(*, project: Project, annotator: Annotator) -> Comparison | None:
    """A gold pair this annotator has not seen; gold pairs take any number of votes."""
    return (
        Comparison.objects.for_project(project)
        .filter(is_gold=True)
        .unseen_by(annotator)
        .order_by("?")
        .first()
    )


# Comparisons are scanned in fill order, a window at a time; the slot counts run on a window.
SERVING_WINDOW = 24
# How far one serving may scan before it says nothing is left (held pairs fill early windows).
SERVING_MAX_WINDOWS = 100


def _lock_comparison_with_room(
    *, project: Project, annotator: Annotator, now: object
) -> Comparison | None:
    """Lock a comparison with a free slot that the annotator has not seen.

    The scan follows the (project, vote_count, shuffle_key) index a window at a time (keyset
    pagination), so its cost does not grow with the project; within a window the comparisons
    are taken least-filled first (votes plus live holds). A row another server holds is
    skipped (SKIP LOCKED); if every row with room was locked, it waits for one rather than
    tell the annotator there is nothing left. The count under the lock decides.
    """
    pending = (
        Comparison.objects.for_project(project)
        .for_humans()
        .filter(is_gold=False, vote_count__lt=F("votes_wanted"))
        .unseen_by(annotator)
    )
    locked_out: list[int] = []
    after: tuple[int, float, int] | None = None
    for _ in range(SERVING_MAX_WINDOWS):
        window_rows = pending
        if after is not None:
            count, key, pk = after
            window_rows = window_rows.filter(
                Q(vote_count__gt=count)
                | Q(vote_count=count, shuffle_key__gt=key)
                | Q(vote_count=count, shuffle_key=key, pk__gt=pk)
            )
        # Exactly the index's order, so the scan stops after the window.
        ordered = window_rows.order_by("vote_count", "shuffle_key", "id")
        window = list(ordered.annotate(filled=_filled_slots(now))[:SERVING_WINDOW])
        open_rows = sorted(
            (c for c in window if c.filled < c.votes_wanted),
            key=lambda c: (c.filled, c.vote_count, c.shuffle_key, c.pk),
        )
        for row in open_rows:
            comparison = _try_lock(row.pk, wait=False)
            if comparison is None:
                locked_out.append(row.pk)
            elif _has_room(comparison, now):
                return comparison
        if len(window) < SERVING_WINDOW:
            break
        after = (window[-1].vote_count, window[-1].shuffle_key, window[-1].pk)
    # Every row with room was locked by concurrent servers for a moment: wait for one.
    for pk in locked_out[:3]:
        comparison = _try_lock(pk, wait=True)
        if comparison is not None and _has_room(comparison, now):
            return comparison
    return None


def _try_lock(pk: int, *, wait: bool) -> Comparison | None:
    skip = not wait and connection.features.has_select_for_update_skip_locked
    # The route is checked again under the lock: routing may have just put the pair on hold.
    rows = Comparison.objects.select_for_update(skip_locked=skip).for_humans()
    return rows.filter(pk=pk).first()


def _has_room(comparison: Comparison, now: object) -> bool:
    """Count under the lock, in a new statement: its snapshot sees every assignment committed
    before the lock was taken, which the window's older snapshot may have missed."""
    filled = (
        Comparison.objects.filter(pk=comparison.pk)
        .annotate(filled=_filled_slots(now))
        .values_list("filled", flat=True)
        .get()
    )
    return filled < comparison.votes_wanted


# --- votes ------------------------------------------------------------------------------


def _parse_token(token: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(token))
    except (TypeError, ValueError, AttributeError) as exc:
        raise PairNotServed("This pair was not served to you.") from exc


@transaction.atomic
def vote_submit(
    *,
    annotator: Annotator,
    token: object,
    choice: object,
    fingerprint: ClientFingerprint | None = None,
    source: str = Vote.Source.WEB,
) -> Vote:
    """Record the annotator's vote on a pair that was served to them.

    Rejects, changing nothing: a pair not served to this annotator (404), an unknown or
    disallowed choice (400), a second vote on the same pair (409, also under a double-click
    race: the database's unique constraints decide), and a vote on an expired pair whose
    slots others have since filled (409). The time to vote is measured on the server from
    when the pair was served. Safe to call more than once: only the first call writes.
    """
    assignment = (
        Assignment.objects.select_related("comparison__project")
        .filter(token=_parse_token(token), annotator=annotator)
        .first()
    )
    if assignment is None:
        raise PairNotServed("This pair was not served to you.")
    comparison = assignment.comparison
    project = comparison.project
    if not isinstance(choice, str) or choice not in project.allowed_choices:
        allowed = ", ".join(project.allowed_choices)
        raise InvalidChoice(f"Unknown choice {str(choice)[:40]!r}; allowed: {allowed}.")
    if Vote.objects.filter(assignment=assignment).exists():
        raise AlreadyVoted("You already voted on this pair.")
    # One annotator's votes are counted under a lock on their row: parallel requests cannot
    # both slip under a limit.
    annotator = Annotator.objects.select_for_update().get(pk=annotator.pk)
    if annotator.state == Annotator.State.BANNED:
        raise AnnotatorBanned()
    now = timezone.now()
    hit = limits.vote_limit_hit(annotator=annotator, project=project, now=now)
    if hit is not None:
        raise RateLimited(hit.message, hit.retry_after_seconds)
    if assignment.expires_at <= now:
        _ensure_slot_left(comparison, assignment, now)
    fingerprint = fingerprint or ClientFingerprint(client_hash="", ip_hash="")
    vote = Vote(
        comparison=comparison,
        annotator=annotator,
        assignment=assignment,
        left_is_a=assignment.left_is_a,
        choice=choice,
        winner=Vote.winner_for(choice, left_is_a=assignment.left_is_a),
        time_to_vote_ms=max(0, int((now - assignment.served_at).total_seconds() * 1000)),
        client_hash=fingerprint.client_hash,
        ip_hash=fingerprint.ip_hash,
        source=source,
        created_at=now,
    )
    try:
        with transaction.atomic():
            vote.save()
    except IntegrityError as exc:
        # A concurrent submit of the same pair won the race on the unique constraint.
        raise AlreadyVoted("You already voted on this pair.") from exc
    Comparison.objects.filter(pk=comparison.pk).update(vote_count=F("vote_count") + 1)
    elo_schedule_refresh(project=project)
    return vote


def _ensure_slot_left(comparison: Comparison, assignment: Assignment, now: datetime) -> None:
    """An expired assignment may still vote if the comparison has a slot left meanwhile:
    votes cast and the live holds of the people it was served to since both take one (else
    the late vote and theirs would overfill it)."""
    Comparison.objects.select_for_update().filter(pk=comparison.pk).first()
    held = (
        Assignment.objects.filter(comparison=comparison, expires_at__gt=now, vote__isnull=True)
        .exclude(pk=assignment.pk)
        .count()
    )
    if comparison.votes.count() + held >= comparison.votes_wanted:
        raise PairExpired("This pair expired and others have taken its votes; load a new pair.")


# --- comparisons ------------------------------------------------------------------------


def comparison_initial_route(project: Project) -> str:
    """`pending` where an enabled routing policy decides who labels the project's pairs."""
    # Asked of the database, not of a cached relation: a policy may have been switched on since.
    if Project.objects.filter(pk=project.pk, routing_policy__enabled=True).exists():
        return Comparison.Route.PENDING
    return Comparison.Route.HUMAN


def comparisons_create_for_prompts(
    *, project: Project, prompts: Iterable[Prompt], votes_wanted: int | None = None
) -> int:
    """Create a comparison for every pair of candidates from different models per prompt.

    Existing pairs (in either orientation) are kept; returns how many were created. Safe to
    run more than once.
    """
    wanted = votes_wanted or project.votes_per_comparison
    prompt_ids = [prompt.pk for prompt in prompts]
    candidates = (
        Candidate.objects.filter(prompt_id__in=prompt_ids)
        .exclude(settings_hash=Candidate.GOLD_DECOY)
        .order_by("prompt_id", "id")
    )
    existing = set(
        Comparison.objects.filter(prompt_id__in=prompt_ids).values_list(
            "candidate_a_id", "candidate_b_id"
        )
    )
    rng = random.Random()  # noqa: S311 - shuffle order only
    route = comparison_initial_route(project)
    new: list[Comparison] = []
    for _, group in itertools.groupby(candidates, key=lambda c: c.prompt_id):
        for first, second in itertools.combinations(list(group), 2):
            if first.model_id == second.model_id:
                continue
            if (first.pk, second.pk) in existing or (second.pk, first.pk) in existing:
                continue
            new.append(
                Comparison(
                    project=project,
                    prompt_id=first.prompt_id,
                    candidate_a=first,
                    candidate_b=second,
                    votes_wanted=wanted,
                    route=route,
                    shuffle_key=rng.random(),
                )
            )
    Comparison.objects.bulk_create(new, batch_size=1000)
    return len(new)


# --- live Elo ---------------------------------------------------------------------------

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


# --- leaderboard snapshots --------------------------------------------------------------


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
        if snapshot is None or stale:
            snapshot = leaderboard_snapshot_create(project=project, filters=filters)
        return selectors.SnapshotView.from_snapshot(snapshot)
    return selectors.SnapshotView.from_result(
        selectors.leaderboard_compute(project, filters, bootstrap_rounds=200)
    )
