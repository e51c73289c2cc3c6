"""Reads of the admin review queue: who the detector suspects, and the evidence behind it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from annotation.models import (
    Annotator,
    AnnotatorAssessment,
    AnnotatorStateChange,
    Project,
    Vote,
)

# An active annotator below this trust is listed for a look, though not flagged.
WATCH_TRUST = 0.5
RECENT_VOTES = 200


@dataclass
class QueueEntry:
    annotator: Annotator
    assessment: AnnotatorAssessment | None
    votes: int
    # Share of the decisive votes with a known side that went to the left answer, counted as
    # the annotator's own page counts it (the detector's signal needs a minimum of votes).
    left_share: float | None = None

    @property
    def signals(self) -> dict[str, float]:
        return self.assessment.signals if self.assessment else {}


@dataclass
class ReviewQueue:
    flagged: list[QueueEntry] = field(default_factory=list)
    watch: list[QueueEntry] = field(default_factory=list)
    banned: int = 0
    last_run: object = None


def review_queue(project: Project) -> ReviewQueue:
    """Flagged annotators of the project (to approve or ban), then active ones to watch."""
    here = Q(votes__comparison__project=project)
    sided = here & Q(votes__side_recorded=True, votes__choice__in=["left", "right"])
    voters = Annotator.objects.voted_in(project).annotate(
        n_votes=Count("votes", filter=here),
        n_sided=Count("votes", filter=sided),
        n_left=Count("votes", filter=sided & Q(votes__choice="left")),
    )
    assessments = {a.annotator_id: a for a in AnnotatorAssessment.objects.filter(project=project)}
    queue = ReviewQueue()
    for annotator in voters.order_by("pseudonym"):
        left_share = annotator.n_left / annotator.n_sided if annotator.n_sided else None
        entry = QueueEntry(annotator, assessments.get(annotator.pk), annotator.n_votes, left_share)
        if annotator.state == Annotator.State.FLAGGED:
            queue.flagged.append(entry)
        elif annotator.state == Annotator.State.BANNED:
            queue.banned += 1
        elif entry.assessment is not None and entry.assessment.trust < WATCH_TRUST:
            queue.watch.append(entry)

    def by_trust(entry: QueueEntry) -> float:
        return entry.assessment.trust if entry.assessment else 1.0

    queue.flagged.sort(key=by_trust)
    queue.watch.sort(key=by_trust)
    queue.last_run = max((a.assessed_at for a in assessments.values()), default=None)
    return queue


@dataclass
class Evidence:
    annotator: Annotator
    assessment: AnnotatorAssessment | None
    votes: int
    choices: dict[str, int]
    left_share: float | None
    median_seconds: float | None
    gold_votes: int
    gold_correct: int
    timeline: list[tuple[float, float | None, str]]
    recent: list[Vote]
    history: QuerySet[AnnotatorStateChange]


def annotator_evidence(project: Project, annotator: Annotator) -> Evidence:
    """What a reviewer needs to decide on one annotator: their votes, none hidden."""
    votes = list(
        Vote.objects.filter(comparison__project=project, annotator=annotator)
        .select_related("comparison")
        .order_by("created_at", "id")
    )
    # A decisive vote imported without its side counts as "unsided", not as left or right.
    choices = Counter(vote.recorded_choice or "unsided" for vote in votes)
    sided = [vote for vote in votes if vote.side_recorded and vote.choice in ("left", "right")]
    timed = sorted(v.time_to_vote_ms for v in votes if v.time_to_vote_ms is not None)
    gold = [vote for vote in votes if vote.comparison.is_gold]
    return Evidence(
        annotator=annotator,
        assessment=AnnotatorAssessment.objects.filter(project=project, annotator=annotator).first(),
        votes=len(votes),
        choices={choice: choices.get(choice, 0) for choice in (*Vote.Choice.values, "unsided")},
        left_share=(sum(v.choice == "left" for v in sided) / len(sided)) if sided else None,
        median_seconds=timed[len(timed) // 2] / 1000 if timed else None,
        gold_votes=len(gold),
        gold_correct=sum(vote.winner == vote.comparison.gold_winner for vote in gold),
        timeline=[
            (
                vote.created_at.timestamp(),
                vote.seconds_to_vote,
                vote.recorded_choice or "unsided",
            )
            for vote in votes
        ],
        recent=votes[-RECENT_VOTES:][::-1],
        history=AnnotatorStateChange.objects.filter(annotator=annotator).select_related("actor"),
    )
