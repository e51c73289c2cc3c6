"""Who labels which comparison, within a human budget. Django-free.

Every pair gets one route:

- `both`: a seeded random audit stream. These pairs get a human label AND the judge's, so the
  judge's accuracy is measured on a sample with known inclusion probabilities; pairs the
  router chose for humans are the judge's hardest and would make it look worse than it is.
  With `audit_tilt` 0 every pair has the same chance; above 0 a pair's chance grows with its
  P(judge disagrees) (`routing.audit`), so the audit also catches more of the judge's
  errors, and estimates weight each audited pair by 1 / its chance (`weighted_rate`), which
  keeps them unbiased.
- `human`: the pairs with the highest expected value of a human label per unit of cost,
  P(judge disagrees) x value / cost, taken greedily until the budget is spent.
- `judge`: the rest.

The audit stream is paid from the same human budget: a budget of B human labels means B
human labels in total, whatever the audit share. Its size is `audit_fraction` of the pairs,
capped by the budget (a budget smaller than the audit keeps a random part of it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from routing.audit import audit_probabilities, draw_audit

Route = Literal["human", "judge", "both"]
ROUTES: tuple[Route, ...] = ("human", "judge", "both")
DEFAULT_AUDIT_FRACTION = 0.05
# The default share of the audit draw that follows P(disagree); the rest is uniform, so every
# pair keeps at least (1 - tilt) x the audit fraction as its chance.
DEFAULT_AUDIT_TILT = 0.7


@dataclass(frozen=True, slots=True)
class Allocation:
    """Routes per pair (in input order), the priority each was ranked by, and the budget."""

    routes: tuple[Route, ...]
    priority: np.ndarray
    budget: float
    spent: float
    # Each pair's chance of joining the audit stream (the weights of audit estimates).
    audit_chance: np.ndarray
    # Pairs a human labels whatever the audit draws: so high in the ranking that no draw can
    # push them below the budget's cut (`surely_human`). Their audits say nothing about the
    # pairs the judge labels, which never come from among them.
    surely_human: np.ndarray

    @property
    def to_human(self) -> np.ndarray:
        """True where a human labels the pair (routes `human` and `both`)."""
        return np.fromiter((r != "judge" for r in self.routes), bool, len(self.routes))

    @property
    def audited(self) -> np.ndarray:
        """True where the pair joined the audit stream (route `both`)."""
        return np.fromiter((r == "both" for r in self.routes), bool, len(self.routes))

    def count(self, route: Route) -> int:
        return sum(r == route for r in self.routes)


def budget_units(budget: float | int, total: float) -> float:
    """The budget in cost units: a float in [0, 1] is a share of `total`, an int an amount.

    A share of a count of pairs is rounded to the nearest pair, so 25% of 10 pairs is 2 (and
    not a fractional third pair).
    """
    if isinstance(budget, bool) or not isinstance(budget, int | float):
        raise ValueError(f"budget must be a share in [0, 1] or a whole amount, not {budget!r}")
    if isinstance(budget, int):
        if budget < 0:
            raise ValueError(f"budget must not be negative, not {budget}")
        return float(budget)
    if not 0.0 <= budget <= 1.0 or math.isnan(budget):
        raise ValueError(f"a budget share must lie in [0, 1], not {budget}")
    return budget * total


def allocate(
    p_disagree: np.ndarray,
    *,
    budget: float | int,
    audit_fraction: float = DEFAULT_AUDIT_FRACTION,
    audit_tilt: float = DEFAULT_AUDIT_TILT,
    value: float | np.ndarray = 1.0,
    costs: np.ndarray | None = None,
    audit_beyond_budget: bool = False,
    audit_by_risk: bool = True,
    seed: int = 0,
) -> Allocation:
    """Route each pair to `human`, `judge` or `both` within `budget`.

    The audit stream is drawn first (`audit_probabilities`, `draw_audit`), then the rest of
    the budget goes to the highest priorities. With `audit_beyond_budget` (the arena: the
    judge stays measured even when the budget is spent) every drawn pair is audited, and the
    ranking gets what the audit left of the budget, if anything. With `audit_by_risk` (the
    default) the systematic draw runs over the pairs sorted by P(disagree), so the audit covers
    every level of risk in proportion (`draw_audit`); without it, over a random order.

    `budget` is a share of the pairs (float in [0, 1]) or a number of pairs (int); with
    `costs` (say, proportional to reading length) it is a share of the total cost or an amount
    of cost instead. Unit costs spend the budget exactly (rounded to whole pairs). With costs
    the greedy pass skips pairs that no longer fit and goes on to cheaper ones. Pairs of equal
    priority are ordered at random (seeded), not by their position in the input.
    """
    p = np.asarray(p_disagree, dtype=float)
    n = len(p)
    chance = audit_probabilities(p, audit_fraction, audit_tilt)
    unit_costs = costs is None
    cost = np.ones(n) if costs is None else np.asarray(costs, dtype=float)
    if cost.shape != (n,) or np.any(cost <= 0):
        raise ValueError("costs must be one positive number per pair")
    limit = budget_units(budget, float(cost.sum()))
    if unit_costs:
        limit = float(min(round(limit), n))
    rng = np.random.default_rng(seed)
    routes: list[Route] = ["judge"] * n
    spent = 0.0

    # In a random order, so a budget smaller than the draw keeps a random part of it.
    for i in rng.permutation(np.flatnonzero(draw_audit(chance, rng, p if audit_by_risk else None))):
        if audit_beyond_budget or spent + cost[i] <= limit + 1e-9:
            routes[i] = "both"
            spent += cost[i]

    priority = p * np.asarray(value, dtype=float) / cost
    # lexsort sorts by the last key first: priority descending, then a random tie-break.
    order = np.lexsort((rng.random(n), -priority))
    for i in order:
        if routes[i] != "judge":
            continue
        if spent + cost[i] <= limit + 1e-9:
            routes[i] = "human"
            spent += cost[i]
        elif unit_costs:
            break
    # A systematic draw takes at most its chances' sum rounded up (the sum's rounding error
    # rounded away first, so a sum of exactly 20 allows 20).
    most_audits = math.ceil(round(float(chance.sum()), 6))
    return Allocation(
        routes=tuple(routes),
        priority=priority,
        budget=limit,
        spent=spent,
        audit_chance=chance,
        surely_human=surely_human(priority, cost, limit, audit_size=most_audits),
    )


def surely_human(
    priority: np.ndarray, cost: np.ndarray, limit: float, *, audit_size: int
) -> np.ndarray:
    """The pairs that go to a human whatever the audit draws: the pair, and every pair of at
    least its priority (ties in any order), fit in the budget beside the costliest audit draw
    of `audit_size` pairs among those ranked below (a budget that covers every pair makes
    every pair sure).

    The rest of the pairs, below that line, are the only ones the judge may label; the audits
    among them, each weighted by 1 / its chance, speak for the judge-labelled pairs.
    """
    n = len(priority)
    if n == 0:
        return np.zeros(0, bool)
    audit_cost = float(np.sort(cost)[::-1][:audit_size].sum())
    order = np.argsort(-priority, kind="stable")
    negated = -priority[order]  # ascending
    cumulative = np.cumsum(cost[order])
    # The cost of each pair and of every pair ranked level with it or above it.
    through = cumulative[np.searchsorted(negated, -priority, side="right") - 1]
    # Only audits among the pairs ranked below can push a pair out; those above are paid for
    # in `through` already, audited or not.
    return through + np.minimum(audit_cost, cumulative[-1] - through) <= limit + 1e-9
