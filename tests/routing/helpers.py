"""Comparisons with judge verdicts and human votes, for the router's database tests."""

from __future__ import annotations

from annotation.models import Annotator, Comparison, ModelEntry, Project, Vote
from models_backend.models import Judgment
from tests.factories import (
    AnnotatorFactory,
    CandidateFactory,
    ComparisonFactory,
    PromptFactory,
)

JUDGE = "test-judge"
# (choice shown with A on the left) -> stored winner
CHOICES = {"model_a": "left", "model_b": "right", "tie": "tie"}


def judged(
    project: Project,
    n: int,
    *,
    verdict: str = "model_a",
    consistent: bool = True,
    p_a: float = 0.9,
    judge: str = JUDGE,
) -> list[Comparison]:
    """`n` pending comparisons, each with the judge's verdict (probabilities in both orders)."""
    comparisons = ComparisonFactory.create_batch(n, project=project, route="pending")
    p_b = round((1.0 - p_a) * 0.8, 6)
    p_tie = max(0.0, 1.0 - p_a - p_b)
    flipped = {"p_a": p_b, "p_b": p_a, "p_tie": p_tie}
    Judgment.objects.bulk_create(
        Judgment(
            comparison=c,
            judge=judge,
            verdict=verdict,
            p_a=p_a,
            p_b=p_b,
            p_tie=p_tie,
            per_order={
                "as_given": {"p_a": p_a, "p_b": p_b, "p_tie": p_tie},
                "swapped": {"p_a": p_a, "p_b": p_b, "p_tie": p_tie} if consistent else flipped,
            },
            consistent=consistent,
        )
        for c in comparisons
    )
    return comparisons


def vote(comparison: Comparison, winners: list[str]) -> list[Annotator]:
    """One vote per winner from fresh annotators, as if cast in the arena."""
    voters = AnnotatorFactory.create_batch(len(winners))
    Vote.objects.bulk_create(
        Vote(
            comparison=comparison,
            annotator=voter,
            left_is_a=True,
            choice=CHOICES[winner],
            winner=winner,
        )
        for voter, winner in zip(voters, winners, strict=True)
    )
    Comparison.objects.filter(pk=comparison.pk).update(vote_count=len(winners))
    return voters


def judged_on(
    project: Project,
    turns: list[str],
    first: ModelEntry,
    second: ModelEntry,
    verdict: str,
    *,
    consistent: bool = True,
) -> Comparison:
    """A comparison of `first` (answer A) and `second` on a new prompt of `turns`, judged."""
    prompt = PromptFactory(project=project, turns=turns)
    comparison = ComparisonFactory(
        project=project,
        prompt=prompt,
        candidate_a=CandidateFactory(prompt=prompt, model=first),
        candidate_b=CandidateFactory(prompt=prompt, model=second),
    )
    return judge(comparison, verdict, consistent=consistent)


def judge(comparison: Comparison, verdict: str, *, consistent: bool = True) -> Comparison:
    """The judge's verdict on `comparison` (probabilities in no particular order)."""
    Judgment.objects.create(
        comparison=comparison, judge=JUDGE, verdict=verdict, p_a=0.5, p_b=0.3, p_tie=0.2,
        consistent=consistent,
    )  # fmt: skip
    return comparison
