"""Annotator quality in the database: run the fraud detector, flag, ban and reinstate.

The statistics live in ``annotation.fraud`` (pure); this module feeds it a project's votes and
acts on its verdicts. Every state change goes through ``annotator_set_state``, which records
who (a user, or the detector), when and why in ``AnnotatorStateChange``. Nothing is deleted:
a flagged or banned annotator's votes stay in the database and only drop out of the default
leaderboards and exports; reinstating brings them back exactly.

A state is on the person, not the project: a bot found in one arena is excluded in all of them.
The detector only ever flags. Banning and reinstating are decisions for a person, and an
annotator a person cleared is not flagged again until they vote after that review.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation import fraud, services
from annotation.models import (
    Annotator,
    AnnotatorAssessment,
    AnnotatorStateChange,
    Assignment,
    Comparison,
    Project,
    Vote,
)
from prefarena.celery import enqueue_on_commit


class StateChangeRefused(Exception):
    """A state change that makes no sense (an unknown state, no reason given)."""


# --- votes as the detector sees them ----------------------------------------------------


def _text_length(parts: object) -> int:
    if isinstance(parts, list):
        return sum(len(str(part)) for part in parts)
    return len(str(parts or ""))


def vote_records(project: Project) -> list[fraud.VoteRecord]:
    """Every vote of the project, flagged and banned annotators' included, for ``assess``.

    ``read_chars`` is the prompt plus both answers (what had to be read); ``length_log_ratio``
    compares the answers' lengths, all turns together; sides count only where they were
    recorded; the fingerprint is the salted client hash.
    """
    comparisons = {
        row[0]: row
        for row in Comparison.objects.filter(project=project).values_list(
            "pk",
            "candidate_a__model__name",
            "candidate_b__model__name",
            "prompt__turns",
            "candidate_a__responses",
            "candidate_b__responses",
            "is_gold",
            "gold_winner",
        )
    }
    read_chars: dict[int, int] = {}
    length_ratio: dict[int, float | None] = {}
    for pk, _, _, turns, first, second, _, _ in comparisons.values():
        chars_a, chars_b = _text_length(first), _text_length(second)
        read_chars[pk] = _text_length(turns) + chars_a + chars_b
        length_ratio[pk] = fraud.length_log_ratio(chars_a, chars_b)
    votes = (
        Vote.objects.filter(comparison__project=project)
        .order_by("created_at", "id")
        .values_list(
            "comparison_id",
            "annotator__pseudonym",
            "winner",
            "left_is_a",
            "side_recorded",
            "time_recorded",
            "time_to_vote_ms",
            "created_at",
            "client_hash",
        )
        .iterator(chunk_size=5000)
    )
    records = []
    for comparison_id, pseudonym, winner, left_is_a, sided, timed, ttv, created, client in votes:
        _, model_a, model_b, *_, is_gold, gold_winner = comparisons[comparison_id]
        if model_a == model_b:
            continue  # two settings of one model: no information about annotators
        records.append(
            fraud.VoteRecord(
                annotator=pseudonym,
                model_a=model_a,
                model_b=model_b,
                winner=winner,
                shown_left_is_a=left_is_a if sided else None,
                time_to_vote_ms=ttv,
                read_chars=read_chars[comparison_id],
                tstamp=created.timestamp() if timed else None,
                fingerprint=client or None,
                gold_correct=(winner == gold_winner) if is_gold else None,
                length_log_ratio=length_ratio[comparison_id],
            )
        )
    return records


# --- detection --------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectionReport:
    project: str
    assessments: list[fraud.AnnotatorAssessment]
    newly_flagged: list[str]

    @property
    def assessed(self) -> int:
        return len(self.assessments)

    @property
    def suspicious(self) -> int:
        return sum(verdict.flagged for verdict in self.assessments)

    def summary(self) -> str:
        flagged = ", ".join(self.newly_flagged) or "none"
        return (
            f"{self.project}: assessed {self.assessed} annotators, {self.suspicious} suspicious; "
            f"newly flagged: {flagged}"
        )


def fraud_assess(
    project: Project, *, config: fraud.FraudConfig = fraud.DEFAULT_CONFIG
) -> list[fraud.AnnotatorAssessment]:
    """The detector's verdicts on the project's annotators, computed fresh; writes nothing."""
    return fraud.assess(vote_records(project), config=config)


def fraud_detect(
    *, project: Project, config: fraud.FraudConfig = fraud.DEFAULT_CONFIG
) -> DetectionReport:
    """Assess every annotator of the project, store the verdicts and flag the suspicious.

    Only active annotators are flagged, and not those a person cleared after their last vote.
    Safe to run again: verdicts are replaced, and a flag is never raised twice.
    """
    assessments = fraud_assess(project, config=config)
    voters = Annotator.objects.voted_in(project)
    annotators = {annotator.pseudonym: annotator for annotator in voters}
    newly_flagged = []
    now = timezone.now()
    with transaction.atomic():
        # One upsert for every verdict (a row per annotator and project), not one query each.
        AnnotatorAssessment.objects.bulk_create(
            [
                AnnotatorAssessment(
                    project=project,
                    annotator=annotators[verdict.annotator],
                    votes=verdict.votes,
                    trust=verdict.trust,
                    suspicious=verdict.flagged,
                    reasons=verdict.reasons,
                    signals=verdict.signals,
                    assessed_at=now,
                )
                for verdict in assessments
            ],
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["project", "annotator"],
            update_fields=["votes", "trust", "suspicious", "reasons", "signals", "assessed_at"],
        )
        for verdict in assessments:
            annotator = annotators[verdict.annotator]
            if verdict.flagged and _detector_may_flag(annotator):
                annotator_set_state(
                    annotator=annotator,
                    state=Annotator.State.FLAGGED,
                    actor=None,
                    project=project,
                    reason="; ".join(r for r in verdict.reasons if r.startswith("FLAG"))
                    or "flagged by the fraud detector",
                    evidence={"trust": verdict.trust, "votes": verdict.votes, **verdict.signals},
                    refresh=False,
                )
                newly_flagged.append(annotator.pseudonym)
        if newly_flagged:
            _refresh_ratings(
                _projects_voted_in(Annotator.objects.filter(pseudonym__in=newly_flagged))
            )
    return DetectionReport(
        project=project.slug, assessments=assessments, newly_flagged=newly_flagged
    )


def _detector_may_flag(annotator: Annotator) -> bool:
    if annotator.state != Annotator.State.ACTIVE:
        return False
    if annotator.reviewed_at is None:
        return True
    return annotator.votes.filter(created_at__gt=annotator.reviewed_at).exists()


# --- state changes ----------------------------------------------------------------------


@transaction.atomic
def annotator_set_state(
    *,
    annotator: Annotator,
    state: str,
    actor: AbstractBaseUser | None,
    reason: str,
    project: Project | None = None,
    evidence: dict | None = None,
    refresh: bool = True,
) -> AnnotatorStateChange | None:
    """Move an annotator to ``state`` and record it; None when it already was in that state
    (a person's decision to keep it is still recorded, with its reason).

    ``actor`` None means the fraud detector. A person setting an annotator active clears them
    (``reviewed_at``), so the detector leaves them alone until they vote again. The affected
    projects' live ratings and stored leaderboards are refreshed after commit.
    """
    if state not in Annotator.State.values:
        allowed = ", ".join(Annotator.State.values)
        raise StateChangeRefused(f"unknown state {state!r}; expected one of {allowed}")
    reason = reason.strip()
    if not reason:
        raise StateChangeRefused("say why: a state change needs a reason")
    annotator = Annotator.objects.select_for_update().get(pk=annotator.pk)
    now = timezone.now()
    if actor is not None and state == Annotator.State.ACTIVE:
        annotator.reviewed_at = now
    previous = annotator.state
    if previous == state:
        annotator.save(update_fields=["reviewed_at"])
        if actor is not None:  # a reviewer's decision to keep the state, with their reason
            AnnotatorStateChange.objects.create(
                annotator=annotator,
                project=project,
                from_state=state,
                to_state=state,
                actor=actor,
                reason=reason[:2000],
            )
        return None
    annotator.state = state
    annotator.state_reason = reason
    annotator.state_changed_at = now
    annotator.save(update_fields=["state", "state_reason", "state_changed_at", "reviewed_at"])
    if state == Annotator.State.BANNED:
        # The pairs a banned account holds are freed now, not when its holds expire.
        Assignment.objects.filter(
            annotator=annotator, vote__isnull=True, expires_at__gt=now
        ).update(expires_at=now)
    change = AnnotatorStateChange.objects.create(
        annotator=annotator,
        project=project,
        from_state=previous,
        to_state=state,
        actor=actor,
        reason=reason,
        evidence=evidence or {},
        created_at=now,
    )
    if refresh:
        _refresh_ratings(_projects_voted_in([annotator]))
    return change


def _projects_voted_in(annotators: Iterable[Annotator]) -> Iterable[Project]:
    return Project.objects.filter(comparisons__votes__annotator__in=list(annotators)).distinct()


def _refresh_ratings(projects: Iterable[Project]) -> None:
    from annotation.tasks import leaderboard_snapshot_task  # noqa: PLC0415 - tasks import us

    for project in projects:
        services.elo_schedule_refresh(project=project)
        enqueue_on_commit(leaderboard_snapshot_task, project_pk=project.pk)
