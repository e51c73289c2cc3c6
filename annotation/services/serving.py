"""Which pair an annotator is served next: fair, concurrent, never beyond a pair's wanted votes."""

from __future__ import annotations

import random
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation import selectors
from annotation.models import (
    Annotator,
    Assignment,
    Comparison,
    Project,
    Prompt,
    Vote,
)
from annotation.services.errors import AnnotatorBanned, NetworkBusy


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

    A banned annotator is served nothing (AnnotatorBanned), nor a new anonymous session from a
    network whose sessions hold ARENA_MAX_OPEN_PAIRS_PER_NETWORK open pairs (NetworkBusy).
    Returns their open assignment if they have one (a reload shows the same pair). Otherwise
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
    if _network_holds_enough(project=project, annotator=annotator, now=now):
        raise NetworkBusy()
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


def _network_holds_enough(*, project: Project, annotator: Annotator, now: object) -> bool:
    """Whether anonymous sessions from the annotator's network hold the most open pairs allowed.

    Every page load by a client that drops the session cookie is a new anonymous annotator,
    and each would hold a slot for the assignment's lifetime; without this cap one script
    could hold every slot of an arena. Logged-in annotators, and anonymous ones who have
    voted here, are not capped (nor are logged-in ones counted).
    """
    if annotator.user_id is not None or not annotator.created_ip_hash:
        return False
    if Vote.objects.filter(annotator=annotator, comparison__project=project).exists():
        return False  # someone who votes here keeps their place
    return network_is_full(project=project, ip_hash=annotator.created_ip_hash, now=now)


def network_is_full(*, project: Project, ip_hash: str, now: object | None = None) -> bool:
    """Whether anonymous sessions from the network `ip_hash` hold the most open pairs of the
    project they may (`ARENA_MAX_OPEN_PAIRS_PER_NETWORK`; 0 is no cap)."""
    limit = settings.ARENA_MAX_OPEN_PAIRS_PER_NETWORK
    if limit <= 0 or not ip_hash:
        return False
    held = Assignment.objects.filter(
        comparison__project=project,
        annotator__user__isnull=True,
        annotator__created_ip_hash=ip_hash,
        vote__isnull=True,
        expires_at__gt=now or timezone.now(),
    )
    return held[limit - 1 : limit].exists()


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
