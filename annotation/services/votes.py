"""Recording a vote on a pair that was served: every refusal changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotation import limits
from annotation.models import (
    Annotator,
    Assignment,
    Comparison,
    Project,
    Vote,
)
from annotation.services.annotators import ClientFingerprint
from annotation.services.errors import (
    AlreadyVoted,
    AnnotatorBanned,
    InvalidChoice,
    PairExpired,
    PairNotServed,
    RateLimited,
)
from annotation.services.leaderboard import elo_schedule_refresh


def _parse_token(token: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(token))
    except (TypeError, ValueError, AttributeError) as exc:
        raise PairNotServed() from exc


@transaction.atomic
def vote_submit(
    *,
    annotator: Annotator,
    token: object,
    choice: object,
    fingerprint: ClientFingerprint | None = None,
    source: str = Vote.Source.WEB,
    project: Project | None = None,
) -> Vote:
    """Record the annotator's vote on a pair that was served to them.

    Rejects, changing nothing: a pair not served to this annotator (in `project`, when
    given: the arena the vote was sent to) (404), an unknown or
    disallowed choice (400), a second vote on the same pair (409, also under a double-click
    race: the database's unique constraints decide), and a vote on an expired pair whose
    slots others have since filled (409). The time to vote is measured on the server from
    when the pair was served. Safe to call more than once: only the first call writes.
    """
    served = Assignment.objects.select_related("comparison__project").filter(
        token=_parse_token(token), annotator=annotator
    )
    if project is not None:  # the arena the vote was sent to: a pair of another is not served
        served = served.filter(comparison__project=project)
    assignment = served.first()
    if assignment is None:
        raise PairNotServed()
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
