"""The fraud detector: each signal on hand-made annotators, and a seeded mini arena."""

from __future__ import annotations

import numpy as np
import pytest

from annotation import fraud
from annotation.fraud import FraudConfig, VoteRecord, assess

MODELS = [f"m{i}" for i in range(8)]
STRENGTH = dict(zip(MODELS, np.linspace(-1.5, 1.5, len(MODELS)).tolist(), strict=True))


def honest_votes(
    annotator: str,
    n: int,
    *,
    seed: int,
    fingerprint: str | None = None,
    start: float = 0.0,
    promoted: str | None = None,
    seconds_per_vote: float = 60.0,
) -> list[VoteRecord]:
    """Votes that follow STRENGTH, sides at random, time to read well above the floor."""
    rng = np.random.default_rng(seed)
    votes = []
    stamp = start
    for _ in range(n):
        a, b = rng.choice(len(MODELS), 2, replace=False)
        p = 1.0 / (1.0 + np.exp(-(STRENGTH[MODELS[a]] - STRENGTH[MODELS[b]])))
        # Ties at a flat 20 %, so decisive votes follow STRENGTH exactly.
        winner = "tie" if rng.random() < 0.2 else "model_a" if rng.random() < p else "model_b"
        if promoted is not None and promoted in (MODELS[a], MODELS[b]):
            winner = "model_a" if MODELS[a] == promoted else "model_b"
        stamp += seconds_per_vote + rng.uniform(0, 30)
        votes.append(
            VoteRecord(
                annotator=annotator,
                model_a=MODELS[a],
                model_b=MODELS[b],
                winner=winner,
                shown_left_is_a=bool(rng.random() < 0.5),
                time_to_vote_ms=int(1000 * seconds_per_vote * rng.uniform(0.8, 1.5)),
                read_chars=2000,
                tstamp=stamp,
                fingerprint=fingerprint or f"fp-{annotator}",
                gold_correct=bool(rng.random() < 0.95) if rng.random() < 0.2 else None,
            )
        )
    return votes


def replace_each(votes: list[VoteRecord], **changes: object) -> list[VoteRecord]:
    from dataclasses import replace

    return [replace(v, **changes) for v in votes]  # type: ignore[arg-type]


def test_always_left_annotator_has_a_tiny_side_bias_p_value() -> None:
    votes = [
        VoteRecord(
            "lefty",
            v.model_a,
            v.model_b,
            "model_a" if v.shown_left_is_a else "model_b",
            shown_left_is_a=v.shown_left_is_a,
        )
        for v in honest_votes("lefty", 60, seed=1)
    ]
    signal = fraud.side_bias_signal(votes)
    assert signal is not None
    assert signal.statistic == 1.0
    assert signal.p_value is not None and signal.p_value < 1e-15
    assert signal.large_effect


def test_honest_annotator_has_no_side_bias() -> None:
    signal = fraud.side_bias_signal(honest_votes("ann", 200, seed=2))
    assert signal is not None
    assert signal.p_value is not None and signal.p_value > 0.01


def test_too_fast_annotator_trips_the_speed_floor() -> None:
    fast = replace_each(honest_votes("fast", 40, seed=3), time_to_vote_ms=5_000)
    signal = fraud.speed_signal(fast)
    assert signal is not None
    assert signal.statistic == 1.0  # 2000 chars at 50 chars/s is a 40 s floor
    assert signal.p_value is not None and signal.p_value < 1e-20
    slow = fraud.speed_signal(honest_votes("slow", 40, seed=3))
    assert slow is not None and slow.statistic == 0.0


def test_reading_floor_has_a_minimum() -> None:
    assert fraud.reading_floor_ms(10) == 1500.0
    assert fraud.reading_floor_ms(5000) == 100_000.0


def test_burst_of_votes_is_caught() -> None:
    burst = [VoteRecord("burst", "m0", "m1", "model_a", tstamp=1000.0 + 3 * i) for i in range(12)]
    signal = fraud.burst_signal(burst)
    assert signal is not None and signal.tripped and signal.statistic == 12
    calm = fraud.burst_signal(honest_votes("calm", 50, seed=4))
    assert calm is not None and not calm.tripped


def test_gold_failing_annotator_is_caught() -> None:
    votes = replace_each(honest_votes("careless", 90, seed=5), gold_correct=None)
    votes = [
        v if i % 3 else replace_each([v], gold_correct=i % 2 == 0)[0] for i, v in enumerate(votes)
    ]
    signal = fraud.gold_signal(votes)
    assert signal is not None
    assert signal.statistic == 0.5  # 15 of 30 gold pairs
    assert signal.p_value is not None and signal.p_value < 1e-3
    assert signal.large_effect
    good = replace_each(honest_votes("good", 30, seed=5), gold_correct=True)
    good_signal = fraud.gold_signal(good)
    assert good_signal is not None and good_signal.p_value == 1.0


def test_always_tie_annotator_is_outlying_against_the_crowd() -> None:
    votes = replace_each(honest_votes("tier", 40, seed=6), winner="tie")
    signals = {s.name: s for s in fraud.tie_signals(votes, {"tie": 0.2, "tie (bothbad)": 0.1})}
    tie = signals[fraud.TIE_RATE]
    assert tie.statistic == 1.0 and tie.p_value is not None and tie.p_value < 1e-20
    assert signals[fraud.BOTH_BAD_RATE].p_value == 1.0


def test_random_voter_disagrees_with_the_crowd_and_an_honest_one_does_not() -> None:
    rng = np.random.default_rng(7)
    honest = honest_votes("ann", 300, seed=7)
    random_votes = replace_each(honest, winner="model_a")
    random_votes = [
        v if rng.random() < 0.5 else replace_each([v], winner="model_b")[0] for v in random_votes
    ]
    bad = fraud.crowd_disagreement_signal(random_votes, STRENGTH)
    good = fraud.crowd_disagreement_signal(honest, STRENGTH)
    assert bad is not None and good is not None
    assert bad.p_value is not None and bad.p_value < 1e-8
    assert good.p_value is not None and good.p_value > 0.01


def test_crowd_disagreement_p_value_is_calibrated_for_honest_voters() -> None:
    """Under the model, p-values are about uniform: the gamma null is not anti-conservative."""
    p_values = []
    for seed in range(60):
        signal = fraud.crowd_disagreement_signal(honest_votes("ann", 40, seed=100 + seed), STRENGTH)
        assert signal is not None and signal.p_value is not None
        p_values.append(signal.p_value)
    assert min(p_values) > 1e-3
    assert 0.3 < float(np.mean(p_values)) < 0.7


def test_promoter_of_one_model_is_caught() -> None:
    votes = honest_votes("fan", 200, seed=8, promoted="m0")  # m0 is the weakest model
    signal = fraud.promoter_signal(votes, STRENGTH)
    assert signal is not None
    assert signal.p_value is not None and signal.p_value < 1e-10
    assert "m0" in signal.reason
    honest = fraud.promoter_signal(honest_votes("ann", 200, seed=8), STRENGTH)
    assert honest is not None and honest.p_value is not None and honest.p_value > 0.01


def test_sybil_accounts_share_a_fingerprint_and_vote_in_lockstep() -> None:
    leader = honest_votes("sybil-0", 30, seed=9, fingerprint="fp-ring")
    follower = [
        VoteRecord(
            "sybil-1",
            v.model_a,
            v.model_b,
            v.winner,
            tstamp=(v.tstamp or 0) + 2.0,
            fingerprint="fp-ring",
        )
        for v in leader
    ]
    bystander = honest_votes("ann", 30, seed=10)
    votes = leader + follower + bystander
    assert fraud.accounts_by_fingerprint(votes)["fp-ring"] == {"sybil-0", "sybil-1"}
    pairs = fraud.lockstep_pairs(votes)
    assert [(p.first, p.second, p.matches) for p in pairs] == [("sybil-0", "sybil-1", 30)]
    results = {r.annotator: r for r in assess(votes)}
    assert results["sybil-0"].flagged and results["sybil-1"].flagged
    assert any("lockstep" in reason for reason in results["sybil-1"].reasons)
    assert not results["ann"].flagged


def test_a_shared_fingerprint_alone_flags_nobody_but_a_ring_falls_with_one_of_its_own() -> None:
    """Honest people behind one network on one browser build (a classroom, an office, a
    carrier's NAT) were all flagged, in every arena, on the fingerprint alone."""
    votes = []
    for i in range(5):
        votes += honest_votes(f"class-{i}", 10, seed=20 + i, fingerprint="fp-nat", start=1e5 * i)
    for i in range(2):
        votes += honest_votes(f"home-{i}", 10, seed=30 + i, fingerprint="fp-home", start=1e6 + i)
    results = {r.annotator: r for r in assess(votes)}
    assert not any(r.flagged for r in results.values())
    assert results["class-0"].trust < 1.0 and results["home-0"].trust < 1.0  # worth a look

    # One account of a ring of four on a fingerprint gives itself away (always the left
    # side): the ring is flagged with it; two accounts on another fingerprint are not.
    ring = []
    for i in range(3):
        ring += honest_votes(f"ring-{i}", 30, seed=40 + i, fingerprint="fp-ring", start=2e6 + i)
    bot = [
        VoteRecord(
            "ring-bot",
            "m0",
            "m7",
            "model_a",
            shown_left_is_a=True,
            tstamp=3e6 + 5 * k,
            fingerprint="fp-ring",
        )
        for k in range(40)
    ]
    crowd = honest_votes("crowd", 300, seed=11)
    results = {r.annotator: r for r in assess(votes + ring + bot + crowd)}
    assert results["ring-bot"].flagged
    for i in range(3):
        assert results[f"ring-{i}"].flagged
        assert any("one of them flagged (ring-bot)" in r for r in results[f"ring-{i}"].reasons)
    assert not any(results[f"class-{i}"].flagged for i in range(5))


def test_too_few_votes_are_not_judged_on_vote_count_gated_signals() -> None:
    votes = [
        VoteRecord("few", "m0", "m7", "model_a" if left else "model_b", shown_left_is_a=left)
        for left in [True] * 10
    ]
    config = FraudConfig()
    assert fraud.side_bias_signal(votes, config) is None
    assert fraud.tie_signals(votes, {"tie": 0.2}, config) == []
    assert fraud.crowd_disagreement_signal(votes, STRENGTH, config) is None
    assert fraud.promoter_signal(votes, STRENGTH, config) is None
    crowd = honest_votes("crowd", 300, seed=11)
    (result,) = [r for r in assess(votes + crowd) if r.annotator == "few"]
    assert not result.flagged
    assert not any(
        key.startswith(("side_bias", "crowd", "promoter", "tie")) for key in result.signals
    )


def test_unknown_winner_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown winner"):
        VoteRecord("ann", "m0", "m1", "model_c")


def test_mini_arena_flags_every_planted_bot_and_no_honest_annotator() -> None:
    votes: list[VoteRecord] = []
    for i in range(60):
        votes += honest_votes(f"honest-{i}", 40 + 3 * i, seed=1000 + i, start=1e5 * i)
    bots = {
        "lefty": [
            VoteRecord(
                "lefty",
                v.model_a,
                v.model_b,
                "model_a" if v.shown_left_is_a else "model_b",
                shown_left_is_a=v.shown_left_is_a,
                time_to_vote_ms=v.time_to_vote_ms,
                read_chars=v.read_chars,
                tstamp=v.tstamp,
                fingerprint=v.fingerprint,
            )
            for v in honest_votes("lefty", 60, seed=1, start=2e7)
        ],
        "tier": replace_each(honest_votes("tier", 60, seed=2, start=3e7), winner="tie"),
        "fast": replace_each(honest_votes("fast", 60, seed=3, start=4e7), time_to_vote_ms=4000),
        "fan": honest_votes("fan", 250, seed=4, promoted="m0", start=5e7),
    }
    for bot_votes in bots.values():
        votes += bot_votes
    results = {r.annotator: r for r in assess(votes)}
    assert {a for a, r in results.items() if r.flagged} == set(bots)
    for name in bots:
        assert results[name].trust < 0.2
        assert any(reason.startswith("FLAG") for reason in results[name].reasons)
    honest_trust = [r.trust for a, r in results.items() if a.startswith("honest")]
    assert min(honest_trust) > 0.2
    assert 0.0 <= min(r.trust for r in results.values()) <= max(honest_trust) <= 1.0


def test_assess_of_nothing_is_empty() -> None:
    assert assess([]) == []


def test_the_correction_is_configurable_and_checked() -> None:
    with pytest.raises(ValueError, match="correction"):
        FraudConfig(correction="bonferroni")
    with pytest.raises(ValueError, match="level"):
        FraudConfig(level=0.0)


def test_fdr_flags_a_borderline_bot_that_holm_lets_through() -> None:
    """Many clear bots make room, under FDR control, for a weaker one; Holm stays strict."""
    rng = np.random.default_rng(3)
    votes = []
    for index in range(30):
        votes += [
            VoteRecord(
                annotator=f"left-{index}",
                model_a="a",
                model_b="b",
                winner="model_a" if left else "model_b",
                shown_left_is_a=bool(left),
            )
            for left in rng.random(40) < 0.5
        ]
    # 29 of 40 decisive votes for the left answer (72%): p ~ 0.006 on its own.
    votes += [
        VoteRecord(
            annotator="lean",
            model_a="a",
            model_b="b",
            winner="model_a" if index < 29 else "model_b",
            shown_left_is_a=True,
        )
        for index in range(40)
    ]
    by_fdr = {r.annotator for r in assess(votes) if r.flagged}
    holm = FraudConfig(correction="fwer")
    by_fwer = {r.annotator for r in assess(votes, config=holm) if r.flagged}
    assert "lean" in by_fdr and "lean" not in by_fwer
    assert by_fwer == by_fdr - {"lean"} and len(by_fwer) == 30
