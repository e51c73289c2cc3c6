"""Leaderboards: Bradley-Terry ratings with 95 % intervals (bootstrap or sandwich), ranks that
respect the intervals, and the observed win-rate and vote-count matrices.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import ndtri

from annotation.ratings.bootstrap import bootstrap_strengths
from annotation.ratings.bradley_terry import _fit_pairs
from annotation.ratings.counts import BattleCounts, FloatArray, IntArray, PairMatrices
from annotation.ratings.sandwich import sandwich_covariance
from annotation.ratings.scale import INIT_RATING, RATING_PER_LOGIT, to_ratings

CiMethod = Literal["bootstrap", "sandwich"]
CONFIDENCE = 0.95
# Below this many votes a model is provisional: listed after the others and ranked apart, so
# one lucky vote (a rating far up, an interval that still clears a model with hundreds of
# votes under the ridge's prior) neither tops the board nor pushes the others down.
PROVISIONAL_VOTES = 10


def ranks_with_uncertainty(lower: FloatArray, upper: FloatArray) -> IntArray:
    """Rank = 1 + number of models whose lower bound is above this model's upper bound."""
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def battle_count_matrix(counts: BattleCounts) -> FloatArray:
    """``M x M`` number of votes between each pair of models (symmetric)."""
    return PairMatrices.from_counts(counts).votes


def win_rate_matrix(counts: BattleCounts) -> FloatArray:
    """Observed ``M x M`` rate at which the row model beat the column model, ties as half.

    NaN where a pair has no votes.
    """
    pairs = PairMatrices.from_counts(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs.votes > 0, pairs.score / pairs.votes, np.nan)


@dataclass(frozen=True)
class Leaderboard:
    """Leaderboard rows (best first) and the seconds each step took."""

    rows: list[dict[str, Any]]
    timings: dict[str, float]
    models: list[str]
    strength: FloatArray  # MLE in log-odds units, mean zero, in ``models`` order
    length_coefficient: float | None = None  # rating points per unit of normalised length diff


class _Stopwatch:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._started = self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = now - self._last
        self._last = now

    def finish(self) -> dict[str, float]:
        self.timings["total"] = time.perf_counter() - self._started
        return self.timings


def _anchor_index(models: Sequence[str], anchor: str | None) -> int | None:
    if anchor is None:
        return None
    try:
        return list(models).index(anchor)
    except ValueError:
        raise ValueError(f"anchor model {anchor!r} has no votes") from None


def _interval_from_bootstrap(
    samples: FloatArray,
    anchor_index: int | None,
    anchor_rating: float,
    center: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    ratings = to_ratings(
        samples, anchor_index=anchor_index, anchor_rating=anchor_rating, center=center
    )
    tail = (1.0 - CONFIDENCE) / 2.0
    return np.quantile(ratings, tail, axis=0), np.quantile(ratings, 1.0 - tail, axis=0)


def _interval_from_covariance(
    strength: FloatArray,
    covariance: FloatArray,
    anchor_index: int | None,
    anchor_rating: float,
    center: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    variance = np.diag(covariance).copy()
    if anchor_index is not None:
        # Var(s_i - s_anchor): the anchor's own uncertainty moves onto everyone else.
        variance += covariance[anchor_index, anchor_index] - 2.0 * covariance[:, anchor_index]
    elif center is not None:
        # Var(s_i - w.s), the mean of the centre's models taking the place of the anchor.
        variance += center @ covariance @ center - 2.0 * covariance @ center
    half_width = ndtri(1.0 - (1.0 - CONFIDENCE) / 2.0) * np.sqrt(np.maximum(variance, 0.0))
    rating = to_ratings(
        strength, anchor_index=anchor_index, anchor_rating=anchor_rating, center=center
    )
    return rating - RATING_PER_LOGIT * half_width, rating + RATING_PER_LOGIT * half_width


def _per_model(counts: BattleCounts) -> FloatArray:
    """``3 x M``: each model's votes, wins and ties."""
    n = len(counts.models)
    per_model = np.zeros((3, n))
    for side, score in ((counts.model_a, counts.outcome), (counts.model_b, 1.0 - counts.outcome)):
        per_model[0] += np.bincount(side, weights=counts.count, minlength=n)
        per_model[1] += np.bincount(side, weights=counts.count * (score == 1.0), minlength=n)
        per_model[2] += np.bincount(side, weights=counts.count * (score == 0.5), minlength=n)
    return per_model


def established_center(counts: BattleCounts, min_votes: int) -> FloatArray | None:
    """Equal weights on the models with at least ``min_votes`` votes, for the mean rating of
    1000: a provisional model's far-off rating would otherwise shift everyone else's. None
    when all or none are provisional (the plain mean)."""
    established = _per_model(counts)[0] >= min_votes
    if established.all() or not established.any():
        return None
    return established / established.sum()


def _model_rows(
    counts: BattleCounts,
    rating: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    min_votes: int = PROVISIONAL_VOTES,
) -> list[dict[str, Any]]:
    n = len(counts.models)
    per_model = _per_model(counts)  # votes, wins, ties
    provisional = per_model[0] < min_votes
    # The established models best first, then the provisional ones best first.
    best_first = np.lexsort((-rating, provisional))
    group = comparison_groups(counts, order=best_first)
    rank = np.zeros(n, dtype=np.int64)
    for g in np.unique(group):  # ranked among the models they were compared with
        for kind in (False, True):  # provisional ones after the group's established ones
            members = (group == g) & (provisional == kind)
            before = int(((group == g) & ~provisional).sum()) if kind else 0
            rank[members] = before + ranks_with_uncertainty(lower[members], upper[members])
    rows = []
    for i in best_first:
        votes, wins, ties = (int(value) for value in per_model[:, i])
        rows.append(
            {
                "model": counts.models[i],
                "rating": float(rating[i]),
                "lower": float(lower[i]),
                "upper": float(upper[i]),
                "rank": int(rank[i]),
                "votes": votes,
                "wins": wins,
                "ties": ties,
                # The model's share of points, ties as half, like the win-rate matrix.
                "win_rate": (wins + 0.5 * ties) / votes if votes else float("nan"),
                # Models in different groups were never compared, not even through others:
                # their ratings' offset is the fit's convention, not a measurement.
                "group": int(group[i]),
                "provisional": bool(provisional[i]),
            }
        )
    return rows


def comparison_groups(counts: BattleCounts, *, order: IntArray) -> IntArray:
    """Per model, its connected group of the comparison graph (an edge per pair with votes),
    numbered 1, 2, ... in the order the groups' first models appear in ``order``."""
    n = len(counts.models)
    voted = counts.count > 0
    graph = coo_matrix(
        (np.ones(int(voted.sum())), (counts.model_a[voted], counts.model_b[voted])), shape=(n, n)
    )
    _, label = connected_components(graph, directed=False)
    number: dict[int, int] = {}
    for i in order:
        number.setdefault(int(label[i]), len(number) + 1)
    return np.array([number[int(label[i])] for i in range(n)], dtype=np.int64)


def leaderboard(
    counts: BattleCounts,
    *,
    bootstrap_rounds: int = 1000,
    ci: CiMethod = "bootstrap",
    seed: int = 0,
    anchor: str | None = None,
    anchor_rating: float = INIT_RATING,
    ridge: float = 0.0,
    workers: int | None = None,
    min_votes: int = PROVISIONAL_VOTES,
) -> Leaderboard:
    """Bradley-Terry leaderboard with 95 % intervals and ranks that respect them.

    ``ci="bootstrap"`` resamples votes ``bootstrap_rounds`` times (seeded by ``seed``);
    ``ci="sandwich"`` uses the asymptotic sandwich covariance. ``anchor`` pins that model at
    ``anchor_rating``; otherwise the mean rating is 1000. Models with fewer than
    ``min_votes`` votes are provisional: listed and ranked after the others of their group.
    """
    watch = _Stopwatch()
    anchor_index = _anchor_index(counts.models, anchor)
    if not counts.models:
        return Leaderboard(rows=[], timings=watch.finish(), models=[], strength=np.zeros(0))
    pairs = PairMatrices.from_counts(counts)
    watch.lap("prepare")
    strength = _fit_pairs(pairs, ridge=ridge)
    center = established_center(counts, min_votes) if anchor_index is None else None
    rating = to_ratings(
        strength, anchor_index=anchor_index, anchor_rating=anchor_rating, center=center
    )
    watch.lap("fit")
    if ci == "bootstrap":
        samples = bootstrap_strengths(
            counts,
            rounds=bootstrap_rounds,
            seed=seed,
            start=strength,
            ridge=ridge,
            workers=workers,
        )
        lower, upper = _interval_from_bootstrap(samples, anchor_index, anchor_rating, center)
    elif ci == "sandwich":
        covariance = sandwich_covariance(pairs, strength, ridge=ridge)
        lower, upper = _interval_from_covariance(
            strength, covariance, anchor_index, anchor_rating, center
        )
    else:
        raise ValueError(f"unknown ci method {ci!r}; expected 'bootstrap' or 'sandwich'")
    watch.lap("ci")
    rows = _model_rows(counts, rating, lower, upper, min_votes)
    watch.lap("rank")
    return Leaderboard(rows=rows, timings=watch.finish(), models=counts.models, strength=strength)


def category_leaderboards(
    counts_by_category: Mapping[str, BattleCounts],
    *,
    bootstrap_rounds: int = 1000,
    ci: CiMethod = "bootstrap",
    seed: int = 0,
    anchor: str | None = None,
    anchor_rating: float = INIT_RATING,
) -> dict[str, Leaderboard]:
    """One leaderboard per category: a category's board is just a fit on its own votes."""
    return {
        category: leaderboard(
            counts,
            bootstrap_rounds=bootstrap_rounds,
            ci=ci,
            seed=seed,
            anchor=anchor,
            anchor_rating=anchor_rating,
        )
        for category, counts in counts_by_category.items()
    }
