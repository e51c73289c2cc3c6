"""The audit stream: which pairs it draws, and what the drawn pairs say about all of them.
Django-free.

Every pair has a known chance of an audit (`audit_probabilities`): uniform at tilt 0, leaning
on the router's P(judge disagrees) above it. `draw_audit` draws with exactly those chances.
Whatever the audit measures is then weighted by 1 / each pair's chance (`weighted_rate`), so
pairs drawn more often do not count more, and the estimate speaks for every pair.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def audit_probabilities(p_disagree: np.ndarray, fraction: float, tilt: float) -> np.ndarray:
    """Each pair's chance of joining the audit stream; they sum to `fraction` x the pairs.

    A chance is proportional to (1 - tilt) + tilt x p / mean(p), capped at 1 (the cap's excess
    spread over the others): tilt 0 is a uniform draw, tilt 1 proportional to P(disagree).
    Below 1 every pair keeps a chance of at least (1 - tilt) x `fraction`; at 1 a pair scored
    0 is never audited, and audit estimates then speak only for pairs scored above 0.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"audit_fraction must lie in [0, 1], not {fraction}")
    if not 0.0 <= tilt <= 1.0:
        raise ValueError(f"audit_tilt must lie in [0, 1], not {tilt}")
    p = np.clip(np.asarray(p_disagree, dtype=float), 0.0, 1.0)
    n = len(p)
    if n == 0 or fraction == 0.0:
        return np.zeros(n)
    mean = p.mean()
    # Nothing to lean on (every score 0): uniform.
    weight = (1.0 - tilt) + (tilt * p / mean if mean > 0 else tilt)
    target = fraction * n
    chance = np.zeros(n)
    capped = np.zeros(n, bool)
    for _ in range(n):  # each pass caps at least one more pair, or stops
        free = ~capped
        if not weight[free].any():  # tilt 1: the rest are scored 0 and never audited
            break
        chance[free] = (target - capped.sum()) * weight[free] / weight[free].sum()
        over = free & (chance >= 1.0)
        if not over.any():
            break
        capped |= over
        chance[capped] = 1.0
    return chance


def draw_audit(
    chance: np.ndarray, rng: np.random.Generator, order_by: np.ndarray | None = None
) -> np.ndarray:
    """Systematic sampling: pair i is drawn with probability `chance[i]`, and the draw's size
    is the sum of the chances rounded up or down (never far from it).

    The pairs are laid out in a random order, or with `order_by` (the router's P(disagree)) in
    that order, ties in a random one. Sorted, the draw spreads over the whole range of risk
    (implicit stratification): each pair keeps exactly its chance, but no draw bunches on the
    safe or the risky end, so what the audit estimates varies less from draw to draw.
    """
    n = len(chance)
    drawn = np.zeros(n, bool)
    if n == 0:
        return drawn
    if order_by is None:
        order = rng.permutation(n)
    else:
        order = np.lexsort((rng.random(n), np.asarray(order_by, dtype=float)))
    edges = np.cumsum(chance[order])
    points = rng.random() + np.arange(int(np.ceil(edges[-1])) + 1)
    hits = np.searchsorted(edges, points[points < edges[-1]], side="right")
    drawn[order[hits[hits < n]]] = True
    return drawn


def weighted_rate(hits: np.ndarray, chance: np.ndarray) -> tuple[float, float]:
    """The rate of `hits` in the whole population a sample came from, each sampled pair
    weighted by 1 / its chance of being sampled (Hajek), and the sample's effective size
    (Kish: what a uniform sample of that size would tell), for an interval."""
    hits = np.asarray(hits, dtype=float)
    weight = 1.0 / np.asarray(chance, dtype=float)
    if len(hits) == 0:
        raise ValueError("no sampled pairs")
    rate = float((weight * hits).sum() / weight.sum())
    return rate, float(weight.sum() ** 2 / (weight**2).sum())


def wilson_interval(successes: float, n: float, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion; None without observations. For a weighted
    sample, pass its weighted rate x its effective size as `successes`, and that size as `n`."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def weighted_interval(
    hits: np.ndarray, chance: np.ndarray
) -> tuple[float, float, float, float] | None:
    """(weighted rate, 95% low, high, effective size) of a sample; None when it is empty."""
    if len(hits) == 0:
        return None
    rate, effective = weighted_rate(hits, chance)
    interval = wilson_interval(rate * effective, effective)
    assert interval is not None
    return rate, interval[0], interval[1], effective


# P(disagree) strata for the final-label accuracy estimate.
ACCURACY_STRATA = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0 + 1e-9])
MIN_STRATUM_AUDITS = 5


def judge_side(surely_human: np.ndarray) -> np.ndarray:
    """Which audited pairs speak for the pairs routed to the judge: those the judge might have
    been given (not `surely_human`: an audit from the top of the ranking stands for the top,
    where the router gives the judge nothing), once there are `MIN_STRATUM_AUDITS` of them;
    every audited pair before that."""
    might = ~np.asarray(surely_human, dtype=bool)
    return might if might.sum() >= MIN_STRATUM_AUDITS else np.ones_like(might)


def judge_labels_right(
    judge_only_p: np.ndarray, audit_p: np.ndarray, audit_ok: np.ndarray, audit_chance: np.ndarray
) -> np.ndarray | None:
    """How many of the judge-labelled pairs are right: (estimate, 95% low, high), or None
    before any audit.

    The judge-labelled pairs are those the router judged least likely wrong, so one overall
    audit rate would undersell them: they are post-stratified by the router's P(disagree)
    (`judge_only_p`, NaN where unknown), each stratum taking the weighted agreement of the
    audited pairs in it (the overall one where a stratum has under five).
    """
    overall = weighted_interval(audit_ok, audit_chance)
    if overall is None:
        return None
    overall_rate = np.array(overall[:3])
    expected = np.isnan(judge_only_p).sum() * overall_rate
    for low, high in itertools.pairwise(ACCURACY_STRATA):
        count = int(((judge_only_p >= low) & (judge_only_p < high)).sum())
        if count == 0:
            continue
        inside = (audit_p >= low) & (audit_p < high)
        stratum = weighted_interval(audit_ok[inside], audit_chance[inside])
        if inside.sum() >= MIN_STRATUM_AUDITS and stratum is not None:
            expected += count * np.array(stratum[:3])
        else:
            expected += count * overall_rate
    return expected
