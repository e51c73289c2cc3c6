"""The audit stream's chances, its draw, and the estimates its pairs give."""

from __future__ import annotations

import numpy as np
import pytest

from routing.audit import (
    audit_probabilities,
    draw_audit,
    judge_labels_right,
    weighted_rate,
    wilson_interval,
)


@pytest.mark.parametrize("tilt", [0.0, 0.3, 0.7, 1.0])
def test_audit_chances_sum_to_the_audit_share_and_lean_on_risk_as_asked(tilt: float) -> None:
    p = np.random.default_rng(0).beta(2, 4, size=500)
    chance = audit_probabilities(p, 0.05, tilt)
    assert chance.sum() == pytest.approx(25.0)
    assert chance.min() >= (1 - tilt) * 0.05 - 1e-12  # every pair keeps a floor
    riskiest, safest = np.argmax(p), np.argmin(p)
    if tilt == 0.0:
        assert np.allclose(chance, 0.05)
    else:
        assert chance[riskiest] > chance[safest]
        # Linear in P(disagree) between the floor and the top.
        assert np.corrcoef(chance, p)[0, 1] == pytest.approx(1.0)


def test_a_chance_above_one_is_capped_and_its_excess_spread() -> None:
    p = np.array([1.0, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01])
    chance = audit_probabilities(p, 0.3, 1.0)
    assert chance[0] == 1.0
    assert chance.sum() == pytest.approx(3.0)
    assert np.allclose(chance[1:], 2.0 / 9)


def test_at_tilt_one_pairs_scored_zero_are_never_audited() -> None:
    chance = audit_probabilities(np.array([0.0, 0.0, 0.0, 1.0]), 0.5, 1.0)
    assert chance.tolist() == [0.0, 0.0, 0.0, 1.0]  # two wanted, one can be had


def test_the_audit_draw_has_its_size_and_each_pair_its_chance() -> None:
    p = np.linspace(0.05, 0.95, 40)
    chance = audit_probabilities(p, 0.25, 0.7)
    rng = np.random.default_rng(1)
    draws = np.array([draw_audit(chance, rng) for _ in range(4000)])
    assert set(draws.sum(axis=1)) == {10}  # the chances sum to 10: exactly 10 every time
    # Each pair's share of draws matches its chance (4000 draws: within 0.03).
    assert np.abs(draws.mean(axis=0) - chance).max() < 0.03


def test_a_tilted_audit_catches_more_errors_and_its_weighted_estimate_stays_unbiased() -> None:
    rng = np.random.default_rng(2)
    p = rng.beta(2, 4, size=2000)  # the router's P(judge wrong), calibrated here
    wrong = rng.random(2000) < p
    estimates, caught = {0.0: [], 0.7: []}, {0.0: [], 0.7: []}
    naive = []
    for tilt in (0.0, 0.7):
        chance = audit_probabilities(p, 0.05, tilt)
        for _ in range(600):
            drawn = draw_audit(chance, rng)
            rate, _ = weighted_rate(wrong[drawn], chance[drawn])
            estimates[tilt].append(rate)
            caught[tilt].append(wrong[drawn].sum())
            if tilt:
                naive.append(wrong[drawn].mean())
    truth = wrong.mean()
    for tilt in (0.0, 0.7):
        assert np.mean(estimates[tilt]) == pytest.approx(truth, abs=0.004)
    assert np.mean(naive) > truth + 0.03  # unweighted, the tilted draw overstates errors
    assert np.mean(caught[0.7]) > 1.15 * np.mean(caught[0.0])


def test_the_weighted_rate_of_a_uniform_sample_is_its_plain_rate() -> None:
    hits = np.array([1, 0, 0, 1, 1])
    rate, effective = weighted_rate(hits, np.full(5, 0.1))
    assert rate == pytest.approx(0.6)
    assert effective == pytest.approx(5.0)
    rate, effective = weighted_rate(np.array([1, 0]), np.array([0.5, 0.1]))
    assert rate == pytest.approx(2 / 12)  # the rarely drawn miss stands for five pairs
    assert effective == pytest.approx(144 / 104)


def test_judge_labels_are_counted_right_as_often_as_audits_of_the_same_risk() -> None:
    # Five audits under P(disagree) 0.2, all agreeing, weights 1, 1, 1, 1, 2 (chance 0.5 on
    # one); two audits at 0.9, one agreeing: too few for their own stratum.
    audit_p = np.array([0.1, 0.1, 0.15, 0.05, 0.1, 0.9, 0.9])
    audit_ok = np.array([1, 1, 1, 1, 1, 1, 0], dtype=float)
    audit_chance = np.array([1, 1, 1, 1, 0.5, 1, 1], dtype=float)
    judge_only = np.array([0.1] * 10 + [0.95] * 4 + [np.nan] * 2)
    right = judge_labels_right(judge_only, audit_p, audit_ok, audit_chance)
    # The safe stratum: rate 1 over an effective 36 / 8 = 4.5 pairs.
    safe = wilson_interval(4.5, 4.5)
    # The overall rate: weights 1, 1, 1, 1, 2, 1, 1 -> 7 / 8 agree, effective 64 / 10 = 6.4.
    overall = (7 / 8, *wilson_interval(7 / 8 * 6.4, 6.4))
    expected = 10 * np.array([1.0, *safe]) + 6 * np.array(overall)
    assert right == pytest.approx(expected)
    assert judge_labels_right(judge_only, audit_p[:0], audit_ok[:0], audit_chance[:0]) is None


def test_a_draw_sorted_by_risk_keeps_each_chance_and_spreads_the_estimate_less() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(2, 4, size=600)  # the router's P(judge wrong), calibrated here
    wrong = rng.random(600) < p
    chance = audit_probabilities(p, 0.05, 0.7)
    draws = {
        by_risk: np.array([draw_audit(chance, rng, p if by_risk else None) for _ in range(3000)])
        for by_risk in (False, True)
    }
    # Sorting changes which pairs are drawn together, never how often each one is.
    assert np.abs(draws[True].mean(axis=0) - chance).max() < 0.02
    assert set(draws[True].sum(axis=1)) == set(draws[False].sum(axis=1)) == {30}
    errors = {
        by_risk: np.array([weighted_rate(wrong[d], chance[d])[0] for d in drawn]) - wrong.mean()
        for by_risk, drawn in draws.items()
    }
    assert abs(errors[True].mean()) < 0.004  # still unbiased
    rmse = {by_risk: np.sqrt(np.mean(e**2)) for by_risk, e in errors.items()}
    assert rmse[True] < 0.9 * rmse[False]
