"""The fraud detector and answer lengths: the crowd's taste for longer answers, each person's
own, and the bot that always picks the longer answer."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from annotation import fraud, moderation
from annotation.fraud import LENGTH, FraudConfig, VoteRecord, assess
from annotation.models import Project
from tests.annotation.test_fraud import MODELS, STRENGTH
from tests.factories import (
    AnnotatorFactory,
    CandidateFactory,
    ComparisonFactory,
    PromptFactory,
)


def votes_with_lengths(
    annotator: str,
    n: int,
    *,
    seed: int,
    taste: float,
    longer_bot: bool = False,
    shorter_bot: bool = False,
    as_detector_models_it: bool = False,
) -> list[VoteRecord]:
    """Votes that follow STRENGTH plus `taste` log-odds per unit of log(length A / length B)
    (per unit of the length gap (a - b) / (a + b), the detector's form, with
    `as_detector_models_it`); log length ratios ~ N(0, 0.8), 20 % ties. With taste 2 about
    73 % of the decisive votes between markedly different lengths go to the longer answer, as
    the MT-Bench experts' 72 %; with 4.5, 88 %, as the keenest of them. A longer-answer bot
    picks the longer answer every time, a shorter-answer bot the shorter."""
    rng = np.random.default_rng(seed)
    votes = []
    for _ in range(n):
        a, b = (MODELS[i] for i in rng.choice(len(MODELS), 2, replace=False))
        ratio = float(rng.normal(0.0, 0.8))
        if longer_bot or shorter_bot:
            winner = "model_a" if (ratio > 0) == longer_bot else "model_b"
        elif rng.random() < 0.2:
            winner = "tie"
        else:
            length = math.tanh(ratio / 2) if as_detector_models_it else ratio
            logit = STRENGTH[a] - STRENGTH[b] + taste * length
            winner = "model_a" if rng.random() < 1 / (1 + math.exp(-logit)) else "model_b"
        votes.append(VoteRecord(annotator, a, b, winner, length_log_ratio=ratio))
    return votes


def crowd_of(count: int, *, seed: int, votes: int = 60) -> list[VoteRecord]:
    """Honest people whose tastes for length spread around 2 log-odds (sd 0.8)."""
    tastes = np.random.default_rng(seed).normal(2.0, 0.8, count)
    return [
        v
        for i, taste in enumerate(tastes)
        for v in votes_with_lengths(f"h{i:02d}", votes, seed=seed * 1000 + i, taste=float(taste))
    ]


def test_length_log_ratio_and_which_answer_a_vote_chose() -> None:
    assert fraud.length_log_ratio(1200, 1000) == pytest.approx(math.log(1.2))
    assert fraud.length_log_ratio(0, 1000) is None
    picked_shorter = VoteRecord("x", "m0", "m1", "model_b", length_log_ratio=math.log(1.5))
    assert picked_shorter.chosen_length_log_ratio == pytest.approx(-math.log(1.5))
    assert picked_shorter.chose_longer is False
    assert replace(picked_shorter, winner="model_a").chose_longer is True
    # About the same length, a tie, or lengths unknown: no say.
    assert replace(picked_shorter, length_log_ratio=math.log(1.1)).chose_longer is None
    assert replace(picked_shorter, winner="tie").chose_longer is None
    assert replace(picked_shorter, length_log_ratio=None).chose_longer is None


def test_the_crowds_taste_for_length_is_recovered_and_absent_without_lengths() -> None:
    votes = [
        v
        for i in range(30)
        for v in votes_with_lengths(
            f"h{i}", 80, seed=100 + i, taste=2.0, as_detector_models_it=True
        )
    ]
    assert fraud.crowd_length_effect(votes, STRENGTH) == pytest.approx(2.0, abs=0.35)
    blind = [replace(v, length_log_ratio=None) for v in votes]
    assert fraud.crowd_length_effect(blind, STRENGTH) == 0.0


def test_a_longer_answer_bot_is_flagged_for_it_and_keen_readers_are_not() -> None:
    crowd = crowd_of(40, seed=1)
    keen = votes_with_lengths("keen", 400, seed=7, taste=4.5)  # ~3 sd above the crowd
    bot = votes_with_lengths("bot", 80, seed=8, taste=0.0, longer_bot=True)
    results = {r.annotator: r for r in assess(crowd + keen + bot)}

    assert results["bot"].flagged
    assert any(reason.startswith("FLAG length bias") for reason in results["bot"].reasons)
    assert results["bot"].signals[LENGTH] == 1.0
    honest_flagged = [a for a, r in results.items() if r.flagged and a != "bot"]
    assert honest_flagged == []
    assert results["keen"].signals[LENGTH] > 0.8  # keen indeed, yet not a bot ...
    assert results["keen"].signals[f"{LENGTH}_p"] < 1e-4
    # ... and a taste, however clear, costs no trust.
    assert not any("length bias" in reason for reason in results["keen"].reasons)


def test_a_shorter_answer_bot_is_flagged_too() -> None:
    bot = votes_with_lengths("bot", 80, seed=8, taste=0.0, shorter_bot=True)
    results = {r.annotator: r for r in assess(crowd_of(40, seed=1) + bot)}
    assert results["bot"].flagged
    assert any(reason.startswith("FLAG length bias") for reason in results["bot"].reasons)
    assert results["bot"].signals[LENGTH] == 0.0


def test_many_longer_answer_bots_do_not_hide_by_shifting_the_crowds_taste() -> None:
    """A fifth of the arena's votes from longer-answer bots pulls the crowd's taste for length
    up so far that no bot stands out from it; the second pass judges them against the crowd
    without them (the first pass found their length test significant)."""
    bots = [
        v
        for j in range(20)
        for v in votes_with_lengths(f"bot{j}", 100, seed=500 + j, taste=0.0, longer_bot=True)
    ]
    results = assess(crowd_of(40, seed=1, votes=80) + bots)
    flagged_bots = [r for r in results if r.annotator.startswith("bot") and r.flagged]
    assert len(flagged_bots) == 20
    assert not any(
        reason.startswith("FLAG length bias")
        for r in results
        if r.annotator.startswith("h")
        for reason in r.reasons
    )


def test_the_length_test_needs_its_own_number_of_votes() -> None:
    bot = votes_with_lengths("bot", 30, seed=9, taste=0.0, longer_bot=True)
    sized = sum(v.chose_longer is not None for v in bot)
    assert FraudConfig().min_votes <= sized < FraudConfig().length_min_votes
    assert fraud.length_bias_signal(bot, STRENGTH, length_effect=2.0) is None
    more = votes_with_lengths("bot", 80, seed=9, taste=0.0, longer_bot=True)
    signal = fraud.length_bias_signal(more, STRENGTH, length_effect=2.0)
    assert signal is not None and signal.large_effect
    assert signal.p_value is not None and signal.p_value < 1e-6


def test_each_persons_taste_for_length_is_their_own_shrunk_towards_the_crowds() -> None:
    keen = votes_with_lengths("keen", 400, seed=3, taste=6.0)
    crowd_effect = fraud.crowd_length_effect(crowd_of(30, seed=2), STRENGTH)
    alone = fraud.crowd_length_effect(keen, STRENGTH)
    shrunk = fraud.crowd_length_effect(keen, STRENGTH, prior=crowd_effect, prior_sd=1.5)
    assert crowd_effect < shrunk < alone
    pinned = fraud.crowd_length_effect(keen, STRENGTH, prior=crowd_effect, prior_sd=1e-4)
    assert pinned == pytest.approx(crowd_effect, abs=1e-3)


def test_keen_readers_of_the_benchmark_arena_are_not_taken_for_disagreeing_with_the_crowd() -> None:
    """In the benchmark's arena of seed 1 (benchmarks/fraud.py: 500 honest people whose
    taste for length varies as the MT-Bench experts' does), judging each person's choices with
    the crowd's taste forced on them flags 9 honest people; with their own taste, shrunk
    towards the crowd's, 1 (for side bias)."""
    from benchmarks.fraud import simulate

    arena = simulate(seed=1, honest=500, bots_per_kind=12)

    def honest_flagged(config: FraudConfig) -> int:
        results = assess(arena.votes, config=config)
        return sum(r.flagged and arena.kind[r.annotator] == "honest" for r in results)

    assert honest_flagged(FraudConfig()) <= 1
    assert honest_flagged(FraudConfig(length_taste_sd=1e-4)) >= 5


@pytest.mark.django_db
def test_vote_records_carry_the_answers_length_ratio(project: Project) -> None:
    prompt = PromptFactory(project=project)
    long_a = ComparisonFactory(
        project=project,
        prompt=prompt,
        candidate_a=CandidateFactory(prompt=prompt, responses=["a" * 300, "b" * 300]),
        candidate_b=CandidateFactory(prompt=prompt, responses=["c" * 200]),
    )
    empty_b = ComparisonFactory(
        project=project,
        prompt=prompt,
        candidate_a=CandidateFactory(prompt=prompt, responses=["a" * 10]),
        candidate_b=CandidateFactory(prompt=prompt, responses=[""]),
    )
    annotator = AnnotatorFactory()
    for comparison in (long_a, empty_b):
        comparison.votes.create(
            annotator=annotator, winner="model_a", choice="left", left_is_a=True
        )

    ratios = sorted(
        (r.length_log_ratio for r in moderation.vote_records(project)),
        key=lambda ratio: ratio is None,
    )

    assert ratios == [pytest.approx(math.log(600 / 200)), None]
