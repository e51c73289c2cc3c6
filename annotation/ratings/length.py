"""Length control: leaderboards with answer length as a covariate, as LMArena's style control."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from annotation.ratings.bootstrap import _dense_index, _rounds_per_chunk, _run_bootstrap
from annotation.ratings.bradley_terry import _NEWTON_MAX_ITER, _NEWTON_MAX_STEP, _NEWTON_STEP_TOL
from annotation.ratings.counts import BattleCounts, FloatArray, IntArray, winner_score
from annotation.ratings.leaderboards import (
    PROVISIONAL_VOTES,
    CiMethod,
    Leaderboard,
    _anchor_index,
    _interval_from_bootstrap,
    _interval_from_covariance,
    _model_rows,
    _Stopwatch,
    established_center,
)
from annotation.ratings.sandwich import SANDWICH_HESSIAN_REG
from annotation.ratings.scale import INIT_RATING, RATING_PER_LOGIT, to_ratings

# "Style control" for answer length, as LMArena does it: the logit of a vote gets a term
# beta * x, where x = (len_a - len_b) / (len_a + len_b) is the normalised length difference,
# in [-1, 1]. Ratings are then what remains after crediting length. To keep inputs aggregated,
# x is binned: bin k = floor(20 * x + 0.5) (bin width 0.05, -20..20) and each bin uses
# x = k / 20, so counts are grouped per (model a, model b, outcome, length bin) cell. The
# binning error is at most 0.025 in x, far below the spread of real length differences.
# Unlike FastChat, x is not centred: the model is antisymmetric in (a, b), and a centred
# feature would smuggle in an "answer shown first" bias term.

LENGTH_BINS_PER_UNIT = 20


def length_diff_bin(
    length_a: float, length_b: float, *, bins_per_unit: int = LENGTH_BINS_PER_UNIT
) -> int:
    """Bin of the normalised length difference ``(a - b) / (a + b)``.

    The same in SQL: ``COALESCE(FLOOR(20.0 * (len_a - len_b) / NULLIF(len_a + len_b, 0)
    + 0.5), 0)``; two empty answers count as equal.
    """
    total = length_a + length_b
    if total <= 0:
        return 0
    return math.floor(bins_per_unit * (length_a - length_b) / total + 0.5)


@dataclass(frozen=True)
class LengthBattleCounts:
    """Vote counts per (model a, model b, outcome, length bin) cell.

    ``cells`` holds the (a, b, outcome, count) part; ``length_bin[i]`` is row i's bin of the
    normalised length difference, a minus b (see ``length_diff_bin``).
    """

    cells: BattleCounts
    length_bin: IntArray
    bins_per_unit: int = LENGTH_BINS_PER_UNIT

    def __post_init__(self) -> None:
        if self.length_bin.shape != self.cells.count.shape:
            raise ValueError("length_bin must have one entry per cell")
        if np.any(np.abs(self.length_bin) > self.bins_per_unit):
            limit = self.bins_per_unit
            raise ValueError(f"length_bin must lie in [-{limit}, {limit}]")

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[str, str, str, int, int]],
        *,
        bins_per_unit: int = LENGTH_BINS_PER_UNIT,
    ) -> LengthBattleCounts:
        """Build from ``(model_a, model_b, winner, length_bin, count)`` rows."""
        cells: Counter[tuple[str, str, float, int]] = Counter()
        for model_a, model_b, winner, length_bin, count in rows:
            cells[model_a, model_b, winner_score(winner), int(length_bin)] += int(count)
        models = sorted({name for a, b, _, _ in cells for name in (a, b)})
        index = {name: i for i, name in enumerate(models)}
        counts = BattleCounts(
            models=models,
            model_a=np.array([index[key[0]] for key in cells], dtype=np.int64),
            model_b=np.array([index[key[1]] for key in cells], dtype=np.int64),
            outcome=np.array([key[2] for key in cells], dtype=np.float64),
            count=np.array(list(cells.values()), dtype=np.int64),
        )
        length_bin = np.array([key[3] for key in cells], dtype=np.int64)
        return cls(cells=counts, length_bin=length_bin, bins_per_unit=bins_per_unit)

    @classmethod
    def from_battles(
        cls,
        battles: Iterable[Mapping[str, Any]],
        *,
        bins_per_unit: int = LENGTH_BINS_PER_UNIT,
    ) -> LengthBattleCounts:
        """Build from battles with ``length_a`` and ``length_b`` (characters or tokens).

        FastChat logs keep them as ``conv_metadata.sum_assistant_a_tokens`` / ``_b_tokens``,
        which are used when the flat keys are absent.
        """

        def lengths(battle: Mapping[str, Any]) -> tuple[float, float]:
            if "length_a" in battle:
                return battle["length_a"], battle["length_b"]
            meta = battle["conv_metadata"]
            return meta["sum_assistant_a_tokens"], meta["sum_assistant_b_tokens"]

        rows = (
            (
                b["model_a"],
                b["model_b"],
                b["winner"],
                length_diff_bin(*lengths(b), bins_per_unit=bins_per_unit),
                1,
            )
            for b in battles
        )
        return cls.from_rows(rows, bins_per_unit=bins_per_unit)


@dataclass(frozen=True)
class _LengthGroups:
    """Votes per (unordered pair, length bin) group, three outcome cells per group.

    Oriented like ``_Cells``: from the lower model index's side, so a flipped vote also flips
    the sign of its length difference. Groups are sorted by pair, so per-pair sums are a
    ``reduceat`` over ``pair_start``.
    """

    n_models: int
    first: IntArray  # per group: lower model index
    second: IntArray  # per group: higher model index
    feature: FloatArray  # per group: normalised length difference, lower minus higher model
    count: IntArray  # (groups * 3,) won, tie, lost
    score_sq: FloatArray  # per group: sum of squared per-vote scores, for the sandwich
    pair_start: IntArray  # first group of each pair
    pair_index: IntArray  # flat M x M index into [pair values..., -pair values..., 0]

    @classmethod
    def from_counts(cls, counts: LengthBattleCounts) -> _LengthGroups:
        cells = counts.cells
        n, bins = len(cells.models), counts.bins_per_unit
        swap = cells.model_a > cells.model_b
        first = np.where(swap, cells.model_b, cells.model_a)
        second = np.where(swap, cells.model_a, cells.model_b)
        code = np.where(swap, 2.0 * cells.outcome, 2.0 - 2.0 * cells.outcome).astype(np.int64)
        length_bin = np.where(swap, -counts.length_bin, counts.length_bin)
        width = 2 * bins + 1
        key = (first * n + second) * width + (length_bin + bins)
        groups, inverse = np.unique(key, return_inverse=True)
        count = np.bincount(inverse * 3 + code, weights=cells.count, minlength=3 * groups.size)
        pair = groups // width
        pair_start = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        per_outcome = count.reshape(-1, 3)
        return cls(
            n_models=n,
            first=pair // n,
            second=pair % n,
            feature=(groups % width - bins) / bins,
            count=count.astype(np.int64),
            score_sq=per_outcome[:, 0] + 0.25 * per_outcome[:, 1],
            pair_start=pair_start,
            pair_index=_dense_index(n, pair[pair_start] // n, pair[pair_start] % n),
        )

    def to_models(self, pair_values: FloatArray, *, antisymmetric: bool) -> FloatArray:
        """Per-pair sums of ``(rounds, groups)`` values as ``(rounds, M, M)`` matrices."""
        per_pair = np.add.reduceat(pair_values, self.pair_start, axis=1)
        mirrored = -per_pair if antisymmetric else per_pair
        zero = np.zeros((per_pair.shape[0], 1))
        dense = np.concatenate([per_pair, mirrored, zero], axis=1).take(self.pair_index, axis=1)
        return dense.reshape(-1, self.n_models, self.n_models)

    def logits(self, params: FloatArray) -> FloatArray:
        """``(rounds, groups)`` logits of the lower model winning."""
        strength, beta = params[:, :-1], params[:, -1:]
        return strength[:, self.first] - strength[:, self.second] + beta * self.feature

    def gradient(self, residual: FloatArray) -> FloatArray:
        """Gradient of the log-likelihood from per-group residuals (points - expected)."""
        by_model = self.to_models(residual, antisymmetric=True).sum(axis=2)
        return np.concatenate([by_model, residual @ self.feature[:, None]], axis=1)

    def information(self, weight: FloatArray) -> FloatArray:
        """``sum_g weight_g z_g z_g^T`` with ``z_g = (e_first - e_second, feature_g)``.

        With weight = votes p (1 - p) this is the negative Hessian; with the per-group sum of
        squared residuals it is the sandwich's gradient covariance.
        """
        rounds, n = weight.shape[0], self.n_models
        matrix = np.empty((rounds, n + 1, n + 1))
        matrix[:, :n, :n] = -self.to_models(weight, antisymmetric=False)
        diagonal = matrix.reshape(rounds, -1)[:, : n * (n + 1) : n + 2]
        diagonal -= matrix[:, :n, :n].sum(axis=2)
        cross = self.to_models(weight * self.feature, antisymmetric=True).sum(axis=2)
        matrix[:, :n, n] = cross
        matrix[:, n, :n] = cross
        matrix[:, n, n] = weight @ self.feature**2
        return matrix


def _newton_length(
    params: FloatArray, groups: _LengthGroups, sample: IntArray, *, tol: float
) -> FloatArray:
    """Length-controlled fits, ``params`` ``(rounds, M + 1)`` (strengths, then beta), in place.

    The same Newton as the plain model, on (pair, length bin) groups instead of pairs.
    """
    per_outcome = sample.reshape(sample.shape[0], -1, 3)
    votes = per_outcome.sum(axis=2, dtype=np.float64)
    points = per_outcome[:, :, 0] + 0.5 * per_outcome[:, :, 1]
    size = params.shape[1]
    jitter = 1e-10 * max(float(votes.sum(axis=1).max(initial=0.0)), 1.0)
    active = np.arange(params.shape[0])
    for _ in range(_NEWTON_MAX_ITER):
        theta = params[active]
        p = expit(groups.logits(theta))
        gradient = groups.gradient(points[active] - votes[active] * p)
        hessian = groups.information(votes[active] * p * (1.0 - p))
        hessian.reshape(len(active), -1)[:, :: size + 1] += jitter
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        np.clip(step, -_NEWTON_MAX_STEP, _NEWTON_MAX_STEP, out=step)
        params[active] = theta + step
        active = active[np.abs(step).max(axis=1) > tol]
        if active.size == 0:
            break
    params[:, :-1] -= params[:, :-1].mean(axis=1, keepdims=True)
    return params


def length_controlled_leaderboard(
    counts: LengthBattleCounts,
    *,
    bootstrap_rounds: int = 1000,
    ci: CiMethod = "sandwich",
    seed: int = 0,
    anchor: str | None = None,
    anchor_rating: float = INIT_RATING,
    workers: int | None = None,
) -> Leaderboard:
    """Leaderboard with answer length as a covariate; see the comment at the top of the module.

    ``Leaderboard.length_coefficient`` is beta in rating points: what a full normalised length
    advantage (x = 1) is worth. The interval defaults to the sandwich (arena-rank's default
    too): a bootstrap here resamples (pair, bin, outcome) cells, up to 41 times as many as the
    plain leaderboard's, and costs about that much more.
    """
    watch = _Stopwatch()
    models = counts.cells.models
    anchor_index = _anchor_index(models, anchor)
    if not models or not len(counts.cells.count):  # no votes counted (a new arena, all flagged)
        return Leaderboard(rows=[], timings=watch.finish(), models=[], strength=np.zeros(0))
    groups = _LengthGroups.from_counts(counts)
    watch.lap("prepare")
    start = np.zeros((1, len(models) + 1))
    params = _newton_length(start, groups, groups.count[None], tol=1e-9)[0]
    strength = params[:-1]
    center = established_center(counts.cells, PROVISIONAL_VOTES) if anchor_index is None else None
    rating = to_ratings(
        strength, anchor_index=anchor_index, anchor_rating=anchor_rating, center=center
    )
    watch.lap("fit")
    if ci == "bootstrap":
        samples = _run_bootstrap(
            groups.count,
            lambda sample: _newton_length(
                np.broadcast_to(params, (sample.shape[0], params.size)).copy(),
                groups,
                sample,
                tol=_NEWTON_STEP_TOL,
            ),
            rounds=bootstrap_rounds,
            seed=seed,
            rounds_per_chunk=_rounds_per_chunk(len(models) + 1),
            workers=workers,
        )
        lower, upper = _interval_from_bootstrap(
            samples[:, :-1], anchor_index, anchor_rating, center
        )
    elif ci == "sandwich":
        covariance = _length_sandwich(groups, params)[:-1, :-1]
        lower, upper = _interval_from_covariance(
            strength, covariance, anchor_index, anchor_rating, center
        )
    else:
        raise ValueError(f"unknown ci method {ci!r}; expected 'bootstrap' or 'sandwich'")
    watch.lap("ci")
    rows = _model_rows(counts.cells, rating, lower, upper)
    watch.lap("rank")
    return Leaderboard(
        rows=rows,
        timings=watch.finish(),
        models=models,
        strength=strength,
        length_coefficient=float(RATING_PER_LOGIT * params[-1]),
    )


def _length_sandwich(groups: _LengthGroups, params: FloatArray) -> FloatArray:
    """Sandwich covariance of (strengths, beta), built like ``sandwich_covariance``."""
    per_outcome = groups.count.reshape(-1, 3)
    votes = per_outcome.sum(axis=1).astype(np.float64)
    points = per_outcome[:, 0] + 0.5 * per_outcome[:, 1]
    p = expit(groups.logits(params[None]))[0]
    curvature = votes * p * (1.0 - p)
    spread = groups.score_sq - 2.0 * p * points + p**2 * votes
    hessian = groups.information(curvature[None])[0]
    hessian += SANDWICH_HESSIAN_REG * votes.sum() * np.eye(len(params))
    hessian_inv = np.linalg.inv(hessian)
    return hessian_inv @ groups.information(spread[None])[0] @ hessian_inv
