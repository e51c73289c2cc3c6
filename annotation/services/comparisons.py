"""Creating the comparisons of a project: every pair of models' answers to each prompt."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

from annotation.models import (
    Candidate,
    Comparison,
    Project,
    Prompt,
)


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

    Existing pairs (in either orientation) are kept; returns how many were created (counting
    any a concurrent call inserted first). Safe to run more than once, and concurrently.
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
    # Two generation jobs on the same prompts (one worker per GPU) may both find a pair
    # missing: the second insert of it is skipped, not an IntegrityError failing its job.
    Comparison.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    return len(new)
