"""Gold pairs: comparisons with a known better answer, mixed silently into the stream.

A gold pair sets a model's real answer to a prompt against a decoy: another model's answer to
a different prompt (of another category where there is one), re-homed onto this prompt. Anyone
who reads both answers picks the real one; a voter who does not read is right half the time.
Both sides come from real competitors, so the reveal after the vote looks like any other pair.

Gold pairs never count for leaderboards or exports; ``Project.gold_rate`` sets how often one
is served, and each annotator's accuracy on them is a fraud signal (``annotation.fraud``).
"""

from __future__ import annotations

import random
from collections import defaultdict

from django.db import transaction

from annotation.models import Candidate, Comparison, Project, Prompt

# Gold pairs take any number of votes: every annotator should meet some.
GOLD_VOTES_WANTED = 32767


@transaction.atomic
def gold_pairs_create(*, project: Project, count: int, seed: int | None = None) -> int:
    """Create up to ``count`` new gold pairs in the project; returns how many were made.

    Needs prompts with answers from at least two models. Safe to run again: a prompt and
    model get at most one decoy, and existing gold pairs are kept.
    """
    if count <= 0:
        return 0
    rng = random.Random(seed)  # noqa: S311 - sampling, not a secret
    real = list(
        Candidate.objects.filter(prompt__project=project)
        .exclude(settings_hash=Candidate.GOLD_DECOY)
        .select_related("prompt", "model")
    )
    by_prompt: dict[int, list[Candidate]] = defaultdict(list)
    for candidate in real:
        by_prompt[candidate.prompt_id].append(candidate)
    taken = set(
        Candidate.objects.filter(
            prompt__project=project, settings_hash=Candidate.GOLD_DECOY
        ).values_list("prompt_id", "model_id")
    )
    prompt_ids = [pk for pk, group in by_prompt.items() if len({c.model_id for c in group}) >= 2]
    rng.shuffle(prompt_ids)
    made = 0
    for prompt_id in prompt_ids:
        if made >= count:
            break
        made += _gold_pair_for(prompt_id, by_prompt, taken, project, rng)
    return made


def _gold_pair_for(
    prompt_id: int,
    by_prompt: dict[int, list[Candidate]],
    taken: set[tuple[int, int]],
    project: Project,
    rng: random.Random,
) -> int:
    group = by_prompt[prompt_id]
    prompt: Prompt = group[0].prompt
    good = rng.choice(group)
    # The decoy's model: another competitor with no decoy on this prompt yet.
    decoy_models = sorted({c.model_id for c in group if c.model_id != good.model_id})
    decoy_models = [m for m in decoy_models if (prompt_id, m) not in taken]
    if not decoy_models:
        return 0
    decoy_model = rng.choice(decoy_models)
    source = _off_topic_answer(prompt, decoy_model, by_prompt, rng)
    if source is None:
        return 0
    decoy = Candidate.objects.create(
        prompt=prompt,
        model_id=decoy_model,
        responses=source.responses[-len(prompt.turns) :],
        settings_hash=Candidate.GOLD_DECOY,
        metadata={"gold_decoy_of": source.pk, "answers_prompt": source.prompt_id},
    )
    taken.add((prompt_id, decoy_model))
    good_is_a = rng.random() < 0.5
    Comparison.objects.create(
        project=project,
        prompt=prompt,
        candidate_a=good if good_is_a else decoy,
        candidate_b=decoy if good_is_a else good,
        votes_wanted=GOLD_VOTES_WANTED,
        is_gold=True,
        gold_winner="model_a" if good_is_a else "model_b",
        shuffle_key=rng.random(),
    )
    return 1


def _off_topic_answer(
    prompt: Prompt,
    model_id: int,
    by_prompt: dict[int, list[Candidate]],
    rng: random.Random,
) -> Candidate | None:
    """The model's answer to another prompt with as many turns, of another category if any."""
    options = [
        candidate
        for pk, group in by_prompt.items()
        if pk != prompt.pk
        for candidate in group
        if candidate.model_id == model_id
        and len(candidate.responses) >= len(prompt.turns)
        and candidate.prompt.turns[0] != prompt.turns[0]
    ]
    other_category = [c for c in options if c.prompt.category != prompt.category]
    pool = other_category or options
    return rng.choice(pool) if pool else None
