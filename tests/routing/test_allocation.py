from __future__ import annotations

import numpy as np
import pytest

from routing.allocation import allocate, audit_probabilities, draw_audit, weighted_rate


@pytest.mark.parametrize("n", [1, 7, 40, 333])
@pytest.mark.parametrize("budget", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_share_budget_is_spent_exactly(n: int, budget: float) -> None:
    scores = np.random.default_rng(n).random(n)
    allocation = allocate(scores, budget=budget, audit_fraction=0.05, seed=1)
    assert int(allocation.to_human.sum()) == round(budget * n)
    assert allocation.spent == round(budget * n)


@pytest.mark.parametrize("count", [0, 3, 50, 500])
def test_count_budget_is_spent_exactly_and_capped(count: int) -> None:
    allocation = allocate(np.linspace(0, 1, 100), budget=count, audit_fraction=0.1)
    assert int(allocation.to_human.sum()) == min(count, 100)


def test_audit_pairs_are_random_get_both_and_come_from_the_budget() -> None:
    n = 1000
    scores = np.linspace(0, 1, n)  # the best pairs are the last ones
    allocation = allocate(scores, budget=0.25, audit_fraction=0.05, audit_tilt=0.0, seed=3)
    assert allocation.count("both") == 50
    assert allocation.count("human") == 200
    assert allocation.count("judge") == 750
    audited = np.flatnonzero(np.array(allocation.routes) == "both")
    # Uniform, not selected by score: some audit pairs sit in the low-score half.
    assert (audited < n // 2).sum() > 10
    # The greedy picks are the top-scoring pairs that are not already audited.
    chosen = np.flatnonzero(np.array(allocation.routes) == "human")
    rest = np.setdiff1d(np.arange(n), audited)
    assert set(chosen) == set(rest[-200:])


def test_audit_is_capped_by_a_small_budget() -> None:
    allocation = allocate(np.ones(100), budget=0.02, audit_fraction=0.1)
    assert allocation.count("both") == 2
    assert allocation.count("human") == 0


def test_zero_budget_routes_everything_to_the_judge() -> None:
    allocation = allocate(np.ones(10), budget=0.0, audit_fraction=0.1)
    assert set(allocation.routes) == {"judge"}


def test_allocation_is_seeded() -> None:
    scores = np.full(200, 0.5)  # all ties: order comes from the seed only
    first = allocate(scores, budget=0.3, seed=5).routes
    assert first == allocate(scores, budget=0.3, seed=5).routes
    assert first != allocate(scores, budget=0.3, seed=6).routes


def test_costs_bound_the_spend_and_favour_cheap_pairs() -> None:
    scores = np.array([0.9, 0.8, 0.5, 0.5])
    costs = np.array([10.0, 1.0, 1.0, 2.0])
    allocation = allocate(scores, budget=4.0 / 14.0, audit_fraction=0.0, costs=costs)
    assert allocation.budget == pytest.approx(4.0)
    # Value per cost: 0.8, 0.5, 0.25, 0.09; the expensive first pair no longer fits.
    assert allocation.routes == ("judge", "human", "human", "human")
    assert allocation.spent == pytest.approx(4.0)


def test_value_scales_priority() -> None:
    allocation = allocate(
        np.array([0.5, 0.4]), budget=1, audit_fraction=0.0, value=np.array([1.0, 2.0])
    )
    assert allocation.routes == ("judge", "human")


@pytest.mark.parametrize("budget", [-0.1, 1.5, float("nan"), -1, True, "0.5"])
def test_bad_budgets_are_refused(budget: object) -> None:
    with pytest.raises(ValueError, match="budget"):
        allocate(np.ones(3), budget=budget)  # type: ignore[arg-type]


def test_bad_costs_are_refused() -> None:
    with pytest.raises(ValueError, match="costs"):
        allocate(np.ones(3), budget=0.5, costs=np.array([1.0, 0.0, 1.0]))


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
