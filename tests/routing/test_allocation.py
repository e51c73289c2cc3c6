from __future__ import annotations

import numpy as np
import pytest

from routing.allocation import allocate


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


def test_an_audit_beyond_the_budget_keeps_every_drawn_pair_and_leaves_no_ranking() -> None:
    p = np.linspace(0.0, 1.0, 40)
    capped = allocate(p, budget=2, audit_fraction=0.25, audit_tilt=0.0, seed=3)
    assert capped.count("both") == 2 and capped.count("human") == 0
    kept = allocate(
        p, budget=2, audit_fraction=0.25, audit_tilt=0.0, audit_beyond_budget=True, seed=3
    )
    assert kept.count("both") == 10 and kept.count("human") == 0
    room = allocate(
        p, budget=15, audit_fraction=0.25, audit_tilt=0.0, audit_beyond_budget=True, seed=3
    )
    assert room.count("both") == 10 and room.count("human") == 5


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("with_costs", [False, True])
@pytest.mark.parametrize("beyond", [False, True])
def test_surely_human_pairs_go_to_people_whatever_the_audit_draws(
    ties: bool, with_costs: bool, beyond: bool
) -> None:
    rng = np.random.default_rng(5)
    p = rng.random(200)
    if ties:
        p = np.round(p, 1)  # eleven levels: the cut falls inside a tie
    costs = rng.integers(1, 4, 200).astype(float) if with_costs else None
    options = {"budget": 0.3, "audit_fraction": 0.1, "audit_tilt": 0.7, "costs": costs}
    draws = [allocate(p, **options, audit_beyond_budget=beyond, seed=s) for s in range(100)]
    sure = draws[0].surely_human
    # The line depends on the scores and the budget, not on the draw.
    assert all((d.surely_human == sure).all() for d in draws)
    assert all(d.to_human[sure].all() for d in draws)
    # It is a top slice of the ranking (by P(disagree) per unit of cost), ties kept together,
    # and nearly every pair below it went to the judge in some draw.
    priority = draws[0].priority
    assert sure.any() and priority[sure].min() > priority[~sure].max()
    below = np.zeros(200, bool)
    for d in draws:
        below |= ~d.to_human
    assert below[~sure].mean() > 0.9
    if not with_costs and not ties:
        # Unit costs: the budget less the largest draw (the chances' sum, 20, rounded up).
        assert sure.sum() == 60 - 20


def test_no_pair_is_sure_when_the_audit_can_take_the_whole_budget() -> None:
    p = np.linspace(0.0, 1.0, 100)
    allocation = allocate(p, budget=0.05, audit_fraction=0.05, seed=1)
    assert not allocation.surely_human.any()
    # Without an audit the sure pairs are the ranking's whole share.
    assert allocate(p, budget=0.25, audit_fraction=0.0).surely_human.sum() == 25


def test_a_budget_that_covers_every_pair_makes_every_pair_sure() -> None:
    p = np.linspace(0.0, 1.0, 50)
    for beyond in (False, True):
        allocation = allocate(p, budget=1.0, audit_fraction=0.1, audit_beyond_budget=beyond)
        assert allocation.surely_human.all() and allocation.to_human.all()
    # One pair short: the audit may take any pair, so only the pairs it cannot push out
    # (the top 44 of 49 places, beside at most 5 audits below them) are sure.
    assert allocate(p, budget=49, audit_fraction=0.1).surely_human.sum() == 44
