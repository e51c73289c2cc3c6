"""Pure rating engine: Bradley-Terry leaderboards and online Elo over aggregated vote counts.

No Django here, only numpy and scipy, so the engine can be tested and benchmarked without a
database. Conventions follow LMArena's ``arena-rank`` (the package behind the public leaderboard)
so results can be cross-checked against it:

* a vote's outcome is the score of model a: ``model_a`` 1, ``model_b`` 0, ``tie`` and
  ``tie (bothbad)`` 0.5;
* strengths are fitted in natural log-odds units and shown as ``400 / ln(10) * strength + 1000``,
  so the mean rating over all models is 1000 (arena-rank starts its optimiser at zero, and every
  gradient step keeps the mean at zero) unless a named model is anchored instead;
* the fit is the unregularised maximum-likelihood estimate; the sandwich interval adds
  ``1e-5 * votes`` to the Hessian's diagonal exactly as arena-rank does;
* a bootstrap round resamples the vote cells multinomially with the number of votes fixed, and
  its interval is the 2.5 % and 97.5 % quantile of the per-round ratings.

Votes are never handled one by one: every entry point takes counts per (model a, model b,
outcome) cell, which is what a SQL ``GROUP BY`` returns, so memory does not grow with the number
of votes. The online Elo helpers are the exception, because Elo depends on the order of votes.

Why the bootstrap is fast (1M votes, 100 models, 1000 rounds in well under a second on two
cores, where arena-rank takes over a second per round):

* Bradley-Terry with half-wins for ties depends on the votes only through per-pair vote totals
  and scores, so each round is reduced to dense ``M x M`` matrices before fitting;
* a round's cell counts are drawn as Poisson variates and then corrected to exactly N votes,
  which is an exact multinomial resample but far cheaper than numpy's multinomial;
* rounds are fitted in batches by fixed-Hessian Newton steps from the full-data MLE (one
  shared inverse Hessian, no per-round solve), with exact Newton for any round that converges
  slowly, in chunks on a thread pool (numpy releases the GIL).
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, ndtri, pdtr

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
CiMethod = Literal["bootstrap", "sandwich"]

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
ELO_K = 4.0
# Names the web vote path uses (annotation.services); keep them.
ELO_SCALE = SCALE
ELO_BASE = BASE
ELO_INITIAL = INIT_RATING
# Rating points per natural log-odds unit of strength.
RATING_PER_LOGIT = SCALE / math.log(BASE)
# arena-rank's sandwich regulariser, multiplied by the number of votes when votes are unweighted.
SANDWICH_HESSIAN_REG = 1e-5
CONFIDENCE = 0.95
LENGTH_BINS_PER_UNIT = 20

WINNER_SCORES: dict[str, float] = {
    "model_a": 1.0,
    "model_b": 0.0,
    "tie": 0.5,
    "tie (bothbad)": 0.5,
    # LMArena's newer dumps spell the both-bad tie this way.
    "both_bad": 0.5,
}
_VALID_SCORES = (0.0, 0.5, 1.0)

# Dense per-round matrices are M x M; chunks of bootstrap rounds are sized to hold about this
# many matrix entries, so memory stays flat (a few tens of MB) whatever the number of votes.
_CHUNK_ENTRIES = 1 << 19
_MAX_CHUNK_ROUNDS = 32
_NEWTON_MAX_ITER = 100
# Cells sharing a count draw Poisson by table inversion when at least this many share it (a
# numpy call per shared count has to pay off) and the count is small enough for a table.
_TABLE_MIN_CELLS = 16
_TABLE_MAX_COUNT = 1000
_CHORD_MAX_ITER = 30
# The chord iteration converges linearly at a rate r <= 1/2 (slower rounds go to Newton), so
# the error left after a step is about r / (1 - r) * step: stopping once a step is below 1e-5
# leaves at most 1e-5 log-odds units (0.002 rating points; ~1e-4 at 1M votes, where r ~ 0.06),
# far below the bootstrap's own noise.
_CHORD_STEP_TOL = 1e-5
# Newton converges quadratically (error after a step ~ step^2 / 2), so stopping once a step is
# below 1e-5 leaves an error near 1e-10 log-odds units, 1e-8 rating points.
_NEWTON_STEP_TOL = 1e-5
# Bounds a single Newton step (about 700 rating points); only degenerate data (a model that
# never lost or never won) gets near it, and there the MLE does not exist anyway.
_NEWTON_MAX_STEP = 4.0


def winner_score(winner: str) -> float:
    """Score of model a for a winner label from FastChat battle logs."""
    try:
        return WINNER_SCORES[winner]
    except KeyError:
        expected = ", ".join(repr(label) for label in WINNER_SCORES)
        raise ValueError(f"unknown winner {winner!r}; expected one of {expected}") from None


# --------------------------------------------------------------------------- vote counts


@dataclass(frozen=True)
class BattleCounts:
    """Vote counts, one row per (model a, model b, outcome) cell.

    ``model_a`` and ``model_b`` index into ``models``; ``outcome`` is model a's score (1, 0.5 or
    0) and ``count`` the number of votes in the cell. Rows may repeat a cell; they add up.
    """

    models: list[str]
    model_a: IntArray
    model_b: IntArray
    outcome: FloatArray
    count: IntArray

    def __post_init__(self) -> None:
        size = self.count.shape
        if not (self.model_a.shape == self.model_b.shape == self.outcome.shape == size):
            raise ValueError("model_a, model_b, outcome and count must have the same length")
        n_models = len(self.models)
        for column in (self.model_a, self.model_b):
            if column.size and (column.min() < 0 or column.max() >= n_models):
                raise ValueError("model index out of range")
        if np.any(self.model_a == self.model_b):
            raise ValueError("a model cannot battle itself")
        if not np.all(np.isin(self.outcome, _VALID_SCORES)):
            raise ValueError("outcome must be 1 (model a won), 0.5 (tie) or 0 (model b won)")
        if np.any(self.count < 0):
            raise ValueError("count must not be negative")

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str, int]]) -> BattleCounts:
        """Build from ``(model_a, model_b, winner, count)`` rows, e.g. a SQL ``GROUP BY``."""
        cells: Counter[tuple[str, str, float]] = Counter()
        for model_a, model_b, winner, count in rows:
            cells[model_a, model_b, winner_score(winner)] += int(count)
        return cls._from_cells(cells)

    @classmethod
    def from_battles(cls, battles: Iterable[Mapping[str, Any]]) -> BattleCounts:
        """Build from FastChat-style battles: mappings with model_a, model_b and winner."""
        # Counting raw labels first keeps the per-battle work to one tuple and one dict update.
        labels = Counter((b["model_a"], b["model_b"], b["winner"]) for b in battles)
        return cls.from_rows((a, b, winner, n) for (a, b, winner), n in labels.items())

    @classmethod
    def _from_cells(cls, cells: Mapping[tuple[str, str, float], int]) -> BattleCounts:
        models = sorted({name for a, b, _ in cells for name in (a, b)})
        index = {name: i for i, name in enumerate(models)}
        return cls(
            models=models,
            model_a=np.array([index[a] for a, _, _ in cells], dtype=np.int64),
            model_b=np.array([index[b] for _, b, _ in cells], dtype=np.int64),
            outcome=np.array([score for _, _, score in cells], dtype=np.float64),
            count=np.array(list(cells.values()), dtype=np.int64),
        )

    @property
    def total_votes(self) -> int:
        return int(self.count.sum())


@dataclass(frozen=True)
class PairMatrices:
    """Dense per-pair sufficient statistics of a set of votes (``M x M``, indexed like models).

    ``votes[a, b]`` counts votes between a and b (symmetric), ``score[a, b]`` is the points a
    earned against b (ties count half), and ``score_sq[a, b]`` sums the squared per-vote scores,
    which the sandwich estimator needs. Bradley-Terry with half-wins for ties depends on the votes
    only through ``votes`` and ``score``.
    """

    votes: FloatArray
    score: FloatArray
    score_sq: FloatArray

    @classmethod
    def from_counts(cls, counts: BattleCounts) -> PairMatrices:
        n = len(counts.models)
        a_vs_b = counts.model_a * n + counts.model_b
        b_vs_a = counts.model_b * n + counts.model_a
        weight = counts.count.astype(np.float64)
        won, lost = counts.outcome, 1.0 - counts.outcome

        def accumulate(values_ab: FloatArray, values_ba: FloatArray) -> FloatArray:
            total = np.bincount(a_vs_b, weights=weight * values_ab, minlength=n * n)
            total += np.bincount(b_vs_a, weights=weight * values_ba, minlength=n * n)
            return total.reshape(n, n)

        ones = np.ones_like(won)
        return cls(
            votes=accumulate(ones, ones),
            score=accumulate(won, lost),
            score_sq=accumulate(won**2, lost**2),
        )


# --------------------------------------------------------------------------- online Elo


def elo_expected(rating_a: float, rating_b: float) -> float:
    """Expected score of a against b under Elo (scale 400, base 10)."""
    return 1.0 / (1.0 + BASE ** ((rating_b - rating_a) / SCALE))


def elo_update(
    rating_a: float, rating_b: float, score_a: float, k: float = ELO_K
) -> tuple[float, float]:
    """Both ratings after one vote, FastChat's online Elo (K=4 by default)."""
    new_a = rating_a + k * (score_a - elo_expected(rating_a, rating_b))
    new_b = rating_b + k * (1.0 - score_a - elo_expected(rating_b, rating_a))
    return new_a, new_b


def compute_online_elo(
    battles: Iterable[Mapping[str, Any]], *, k: float = ELO_K, init_rating: float = INIT_RATING
) -> dict[str, float]:
    """Online Elo over battles in the order given (order matters, unlike Bradley-Terry)."""
    ratings: dict[str, float] = {}
    for battle in battles:
        a, b = battle["model_a"], battle["model_b"]
        ratings[a], ratings[b] = elo_update(
            ratings.get(a, init_rating),
            ratings.get(b, init_rating),
            winner_score(battle["winner"]),
            k,
        )
    return ratings


# --------------------------------------------------------------------------- Bradley-Terry fit


def _newton_bradley_terry(
    strength: FloatArray,
    votes: FloatArray,
    excess_score: FloatArray,
    *,
    ridge: float = 0.0,
    tol: float = _NEWTON_STEP_TOL,
) -> FloatArray:
    """Maximise the Bradley-Terry likelihood for a batch of rounds at once, in place.

    ``strength`` is ``(rounds, M)``, the start point (zero, or the full-data MLE for bootstrap
    rounds); ``votes`` is ``(rounds, M, M)``; ``excess_score`` is ``(rounds, M)``, each model's
    points minus half its votes. Each round takes full Newton steps with its own Hessian until
    its step is below ``tol``; converged rounds drop out of the batch. Returns ``strength``,
    re-centred to mean zero per round.
    """
    rounds, n_models = strength.shape
    # With t = tanh(d / 2): sigmoid(d) = (1 + t) / 2 and p (1 - p) = (1 - t^2) / 4, so the
    # gradient is excess_score - rowsum(votes * t) / 2 and four times the negative Hessian is
    # diag(rowsum(w4)) - w4 with w4 = votes (1 - t^2).
    # The Hessian is singular along "shift everyone", which the likelihood cannot see; a ridge
    # far below the data's curvature makes the solve well posed without moving the optimum.
    jitter = 1e-10 * max(float(votes.sum(axis=2).max(initial=0.0)), 1.0) + ridge
    # Reused buffers: fresh multi-MB temporaries each iteration cost more in page faults than
    # the arithmetic.
    tanh_buffer = np.empty_like(votes)
    hessian_buffer = np.empty_like(votes)
    active = np.arange(rounds)
    for _ in range(_NEWTON_MAX_ITER):
        size = active.size
        theta = strength[active]
        half = 0.5 * theta
        tanh = np.subtract(half[:, :, None], half[:, None, :], out=tanh_buffer[:size])
        np.tanh(tanh, out=tanh)
        hessian = np.multiply(votes, tanh, out=hessian_buffer[:size])
        gradient = excess_score - 0.5 * hessian.sum(axis=2) - ridge * theta
        hessian *= tanh
        hessian -= votes
        diagonal = hessian.reshape(size, -1)[:, :: n_models + 1]
        diagonal += 4.0 * jitter - hessian.sum(axis=2)
        step = np.linalg.solve(hessian, 4.0 * gradient[:, :, None])[:, :, 0]
        np.clip(step, -_NEWTON_MAX_STEP, _NEWTON_MAX_STEP, out=step)
        strength[active] = theta + step
        moving = np.abs(step).max(axis=1, initial=0.0) > tol
        if not moving.any():
            break
        if not moving.all():
            active, votes, excess_score = active[moving], votes[moving], excess_score[moving]
    strength -= strength.mean(axis=1, keepdims=True)
    return strength


def _chord_bradley_terry(
    strength: FloatArray,
    votes: FloatArray,
    excess_score: FloatArray,
    inverse: FloatArray,
    *,
    ridge: float,
    tol: float,
) -> IntArray:
    """Fit bootstrap rounds with Newton steps that all use one shared inverse Hessian.

    A resample's Hessian stays close to the full data's, so the fixed-Hessian ("chord")
    iteration ``strength += inverse @ gradient`` converges linearly and fast (error x ~0.1 per
    step at 1M votes) for a fraction of a Newton step's cost: no per-round Hessian, no solve.
    Rounds whose steps shrink by less than half per iteration (tiny or lopsided data) stop and
    are returned for exact Newton. Updates ``strength`` in place.
    """
    active = np.arange(strength.shape[0])
    previous = np.full(active.size, np.inf)
    buffer = np.empty_like(votes)
    handed_over = []
    for _ in range(_CHORD_MAX_ITER):
        theta = strength[active]
        half = 0.5 * theta
        tanh = np.subtract(half[:, :, None], half[:, None, :], out=buffer[: active.size])
        np.tanh(tanh, out=tanh)
        tanh *= votes
        gradient = excess_score - 0.5 * tanh.sum(axis=2) - ridge * theta
        step = gradient @ inverse
        # Drop the "shift everyone" component, which the likelihood cannot see.
        step -= step.mean(axis=1, keepdims=True)
        np.clip(step, -_NEWTON_MAX_STEP, _NEWTON_MAX_STEP, out=step)
        strength[active] = theta + step
        size = np.abs(step).max(axis=1, initial=0.0)
        # Linear convergence at rate r leaves an error of about r / (1 - r) * step <= step.
        done = size <= tol
        slow = ~done & (size > 0.5 * previous)
        handed_over.append(active[slow])
        keep = ~done & ~slow
        if not keep.any():
            active = active[keep]
            break
        if not keep.all():
            active, votes, excess_score = active[keep], votes[keep], excess_score[keep]
        previous = size[keep]
    handed_over.append(active)
    return np.concatenate(handed_over)


def _shared_inverse_hessian(pairs: PairMatrices, strength: FloatArray, ridge: float) -> FloatArray:
    """Pseudo-inverse of the full data's negative Hessian at its MLE (plus ``ridge``)."""
    p = predicted_win_rates(strength)
    hessian = _laplacian(pairs.votes * p * (1.0 - p)) + ridge * np.eye(len(strength))
    return np.linalg.pinv(hessian, hermitian=True)


def fit_bradley_terry(counts: BattleCounts, *, ridge: float = 0.0) -> FloatArray:
    """Maximum-likelihood Bradley-Terry strengths in natural log-odds units, mean zero.

    ``ridge`` adds an L2 penalty ``ridge / 2 * |strength|^2`` to the negative log-likelihood.
    The default 0 matches arena-rank; a small value keeps ratings finite for a model that has
    never lost (or never won), where the MLE does not exist.
    """
    pairs = PairMatrices.from_counts(counts)
    return _fit_pairs(pairs, ridge=ridge)


def _fit_pairs(pairs: PairMatrices, *, ridge: float) -> FloatArray:
    start = np.zeros((1, pairs.votes.shape[0]))
    excess_score = pairs.score.sum(axis=1) - 0.5 * pairs.votes.sum(axis=1)
    # One fit is cheap, so converge all the way (the bootstrap stops a little earlier).
    return _newton_bradley_terry(
        start, pairs.votes[None], excess_score[None], ridge=ridge, tol=1e-9
    )[0]


def to_ratings(
    strength: FloatArray, *, anchor_index: int | None = None, anchor_rating: float = INIT_RATING
) -> FloatArray:
    """Strengths (``(..., M)``, log-odds units) on the Elo-like scale.

    Without an anchor the mean rating is 1000, as in arena-rank; with one, model
    ``anchor_index`` sits at ``anchor_rating`` (in every bootstrap round, so its own interval
    collapses to a point, as in FastChat's anchored leaderboards).
    """
    if anchor_index is None:
        return RATING_PER_LOGIT * strength + INIT_RATING
    shift = strength[..., anchor_index, None]
    return RATING_PER_LOGIT * (strength - shift) + anchor_rating


def predicted_win_rates(strength: FloatArray) -> FloatArray:
    """``M x M`` Bradley-Terry probability that the row model beats the column model."""
    return expit(strength[:, None] - strength[None, :])


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class _Cells:
    """Votes per (unordered pair, outcome) cell: the units a bootstrap round resamples.

    Orienting every vote from the lower model index's point of view merges (a, b) with (b, a);
    the Bradley-Terry likelihood has no position term, so this changes nothing but halves the
    number of cells to sample. Every pair gets three cells (lower model won, tie, lost), empty
    ones included, so a resample reduces to pair totals by plain slicing.
    """

    n_models: int
    first: IntArray  # lower model index of each pair that has votes
    second: IntArray  # higher model index of each pair
    count: IntArray  # (pairs * 3,) votes per cell, pair-major: won, tie, lost
    pair_index: IntArray  # flat M x M index into [pair values..., mirrored values..., 0]

    @classmethod
    def from_counts(cls, counts: BattleCounts) -> _Cells:
        n = len(counts.models)
        swap = counts.model_a > counts.model_b
        first = np.where(swap, counts.model_b, counts.model_a)
        second = np.where(swap, counts.model_a, counts.model_b)
        # Outcome code from the lower model's side: 0 won, 1 tie, 2 lost.
        code = np.where(swap, 2.0 * counts.outcome, 2.0 - 2.0 * counts.outcome).astype(np.int64)
        key = first * n + second
        pairs, inverse = np.unique(key[counts.count > 0], return_inverse=True)
        cell = inverse * 3 + code[counts.count > 0]
        weight = counts.count[counts.count > 0]
        cell_count = np.bincount(cell, weights=weight, minlength=3 * pairs.size)
        return cls(
            n_models=n,
            first=pairs // n,
            second=pairs % n,
            count=cell_count.astype(np.int64),
            pair_index=_dense_index(n, pairs // n, pairs % n),
        )


@dataclass(frozen=True)
class _PoissonPlan:
    """Draws Poisson(count) for every cell, ``(rounds, cells)``, by the fastest exact route.

    numpy's Poisson sampler costs ~50 ns a draw, and a 1M-vote bootstrap needs ~15M draws.
    Counts are integers and many cells share one (small counts especially), so cells sharing
    a count that is frequent enough draw by inversion: a uniform looked up in that count's
    cumulative distribution, ~20 ns. The table runs to 12 standard deviations past the mean,
    where the tail is far below double precision. Other cells use numpy's sampler.
    """

    table_cells: list[IntArray]
    tables: list[FloatArray]
    other_cells: IntArray
    n_cells: int

    @classmethod
    def for_counts(cls, count: IntArray) -> _PoissonPlan:
        values, inverse, frequency = np.unique(count, return_inverse=True, return_counts=True)
        by_value = np.argsort(inverse, kind="stable")
        groups = np.split(by_value, np.cumsum(frequency)[:-1])
        use_table = (frequency >= _TABLE_MIN_CELLS) & (values <= _TABLE_MAX_COUNT) & (values > 0)
        tables = [
            _poisson_cdf(int(value))
            for value, table in zip(values, use_table, strict=True)
            if table
        ]
        others = [
            group
            for value, group, table in zip(values, groups, use_table, strict=True)
            if value > 0 and not table
        ]
        return cls(
            table_cells=[group for group, table in zip(groups, use_table, strict=True) if table],
            tables=tables,
            other_cells=np.concatenate(others) if others else np.zeros(0, dtype=np.int64),
            n_cells=count.size,
        )

    def draw(self, rng: np.random.Generator, rounds: int, count: IntArray) -> IntArray:
        sample = np.zeros((rounds, self.n_cells), dtype=np.int64)
        for cells, table in zip(self.table_cells, self.tables, strict=True):
            uniform = rng.random((rounds, cells.size))
            sample[:, cells] = np.searchsorted(table, uniform, side="right")
        means = count[self.other_cells].astype(np.float64)
        # One row per cell: numpy's Poisson sampler is faster when the mean stays the same.
        sample[:, self.other_cells] = rng.poisson(means[:, None], size=(means.size, rounds)).T
        return sample


def _poisson_cdf(mean: int) -> FloatArray:
    support = np.arange(int(mean + 12 * math.sqrt(mean) + 30))
    cdf = pdtr(support, mean)
    cdf[-1] = 1.0  # the tail beyond is below 1e-30
    return cdf


def _resample_cells(
    rng: np.random.Generator, count: IntArray, rounds: int, plan: _PoissonPlan | None = None
) -> IntArray:
    """Multinomial resamples of the cell counts with the total fixed: ``(rounds, cells)``.

    numpy's multinomial draws one conditional binomial per cell and round and is the
    bottleneck at 1M votes. Instead draw independent Poisson(count) per cell, then make each
    round's total exact. Given its total t, a Poisson draw is Multinomial(t, p); adding N - t
    fresh votes, or deleting t - N of its votes chosen uniformly without replacement, leaves
    Multinomial(N, p). So the result is exactly a resample of the N votes.
    """
    total = int(count.sum())
    sample = (plan or _PoissonPlan.for_counts(count)).draw(rng, rounds, count)
    drawn = sample.sum(axis=1)
    short = np.maximum(total - drawn, 0)
    if short.any():
        # Each missing vote lands in a cell with probability count / N: look a uniform vote
        # index up in the cumulative counts, exact in integer arithmetic.
        vote = rng.integers(0, total, size=int(short.sum()))
        cell = np.searchsorted(np.cumsum(count), vote, side="right")
        np.add.at(sample, (np.repeat(np.arange(rounds), short), cell), 1)
    over = np.flatnonzero(drawn > total)
    if over.size:
        sample[over] = _delete_random_votes(rng, sample[over], drawn[over] - total)
    return sample


def _delete_random_votes(rng: np.random.Generator, sample: IntArray, excess: IntArray) -> IntArray:
    """``sample`` with ``excess[r]`` distinct, uniformly chosen votes deleted from row r.

    Votes are numbered along the flattened rows, so one sorted lookup serves all rows.
    Positions are drawn with replacement and repeats redrawn in their row until all differ:
    the procedure treats every vote of a row alike, so the deleted set is a uniform subset.
    """
    row_total = sample.sum(axis=1)
    row_offset = np.cumsum(row_total) - row_total
    owner = np.repeat(np.arange(sample.shape[0]), excess)
    position = np.sort(row_offset[owner] + rng.integers(0, row_total[owner]))
    while True:
        # Repeats are rare (about excess^2 / (2 * votes) per row), so this loop is short.
        repeat = np.flatnonzero(position[1:] == position[:-1]) + 1
        if repeat.size == 0:
            break
        row = np.searchsorted(row_offset, position[repeat], side="right") - 1
        position[repeat] = row_offset[row] + rng.integers(0, row_total[row])
        position.sort()
    cell = np.searchsorted(np.cumsum(sample), position, side="right")
    return sample - np.bincount(cell, minlength=sample.size).reshape(sample.shape)


def _dense_index(n_models: int, first: IntArray, second: IntArray) -> IntArray:
    """Flat ``M x M`` index into ``[pair values..., mirrored values..., 0]``.

    With it, one ``take`` turns per-pair values into dense matrices; pairs without votes and
    the diagonal read the trailing zero.
    """
    n, n_pairs = n_models, first.size
    index = np.full(n * n, 2 * n_pairs, dtype=np.int64)
    index[first * n + second] = np.arange(n_pairs)
    index[second * n + first] = n_pairs + np.arange(n_pairs)
    return index


def _fit_resampled_pairs(
    cells: _Cells,
    start: FloatArray,
    inverse: FloatArray,
    sample: IntArray,
    ridge: float,
) -> FloatArray:
    """Bradley-Terry fits of resampled cell counts ``(rounds, cells)``, warm-started."""
    rounds, n = sample.shape[0], cells.n_models
    won, tie, lost = (sample[:, outcome::3] for outcome in range(3))
    votes = (won + tie + lost).astype(np.float64)
    # Points above half the votes, from the lower model's side (its opponent's is the negative).
    excess = 0.5 * (won - lost)
    zero = np.zeros((rounds, 1))
    index = cells.pair_index
    dense_votes = np.concatenate([votes, votes, zero], axis=1).take(index, axis=1)
    dense_votes = dense_votes.reshape(rounds, n, n)
    dense_excess = np.concatenate([excess, -excess, zero], axis=1).take(index, axis=1)
    excess_score = dense_excess.reshape(rounds, n, n).sum(axis=2)
    strength = np.broadcast_to(start, (rounds, n)).copy()
    slow = _chord_bradley_terry(
        strength, dense_votes, excess_score, inverse, ridge=ridge, tol=_CHORD_STEP_TOL
    )
    if slow.size:
        strength[slow] = _newton_bradley_terry(
            strength[slow], dense_votes[slow], excess_score[slow], ridge=ridge
        )
    strength -= strength.mean(axis=1, keepdims=True)
    return strength


def _worker_count(workers: int | None) -> int:
    if workers is not None:
        return max(1, workers)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run_bootstrap(
    count: IntArray,
    fit_rounds: Callable[[IntArray], FloatArray],
    *,
    rounds: int,
    seed: int,
    rounds_per_chunk: int,
    workers: int | None,
) -> FloatArray:
    """Resample ``count`` ``rounds`` times and refit, in chunks on a thread pool.

    numpy releases the GIL in its samplers, ufuncs and LAPACK calls, so threads use every core
    without copying data to processes. Each chunk has its own child seed, so results depend on
    ``seed`` only, not on ``workers`` or scheduling.
    """
    sizes = [min(rounds_per_chunk, rounds - done) for done in range(0, rounds, rounds_per_chunk)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    plan = _PoissonPlan.for_counts(count)

    def run(chunk: int) -> FloatArray:
        rng = np.random.default_rng(seeds[chunk])
        return fit_rounds(_resample_cells(rng, count, sizes[chunk], plan))

    with ThreadPoolExecutor(max_workers=_worker_count(workers)) as pool:
        return np.concatenate(list(pool.map(run, range(len(sizes)))))


def _rounds_per_chunk(parameters: int) -> int:
    return max(1, min(_MAX_CHUNK_ROUNDS, _CHUNK_ENTRIES // max(parameters**2, 1)))


def bootstrap_strengths(
    counts: BattleCounts,
    *,
    rounds: int = 1000,
    seed: int = 0,
    start: FloatArray | None = None,
    ridge: float = 0.0,
    workers: int | None = None,
) -> FloatArray:
    """Bootstrap strengths, ``(rounds, M)`` in log-odds units, mean zero per round.

    Each round resamples the votes with replacement (as cell counts, see ``_resample_cells``)
    and refits, warm-started from ``start``, the full-data MLE (computed if not given), by
    ``_chord_bradley_terry`` with exact Newton as the fallback. ``workers`` threads (default:
    the CPUs this process may use) share the rounds; the result depends on ``seed`` only.
    """
    cells = _Cells.from_counts(counts)
    pairs = PairMatrices.from_counts(counts)
    if start is None:
        start = _fit_pairs(pairs, ridge=ridge)
    if rounds <= 0 or cells.count.sum() == 0:
        return np.broadcast_to(start, (max(rounds, 0), start.size)).copy()
    fixed_start = start
    inverse = _shared_inverse_hessian(pairs, start, ridge)
    return _run_bootstrap(
        cells.count,
        lambda sample: _fit_resampled_pairs(cells, fixed_start, inverse, sample, ridge),
        rounds=rounds,
        seed=seed,
        rounds_per_chunk=_rounds_per_chunk(cells.n_models),
        workers=workers,
    )


# --------------------------------------------------------------------------- sandwich


def sandwich_covariance(
    pairs: PairMatrices, strength: FloatArray, *, ridge: float = 0.0
) -> FloatArray:
    """Sandwich (robust) covariance of the strengths, ``H^-1 G H^-1``, as in arena-rank.

    ``H`` is the Hessian of the negative log-likelihood plus ``1e-5 * votes`` on the diagonal
    (arena-rank's regulariser; it also fixes the free shift), and ``G`` sums the outer products
    of the per-vote gradients, ``(score - p)^2`` per vote, which ties make smaller than p(1-p).
    """
    total = pairs.votes.sum() / 2.0
    p = predicted_win_rates(strength)
    curvature = pairs.votes * p * (1.0 - p)
    spread = pairs.score_sq - 2.0 * p * pairs.score + p**2 * pairs.votes
    hessian = _laplacian(curvature) + (SANDWICH_HESSIAN_REG * total + ridge) * np.eye(len(p))
    hessian_inv = np.linalg.inv(hessian)
    return hessian_inv @ _laplacian(spread) @ hessian_inv


def _laplacian(weights: FloatArray) -> FloatArray:
    """``diag(row sums) - weights``: how pairwise terms enter a gradient outer product."""
    return np.diag(weights.sum(axis=1)) - weights


# --------------------------------------------------------------------------- leaderboard


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
    samples: FloatArray, anchor_index: int | None, anchor_rating: float
) -> tuple[FloatArray, FloatArray]:
    ratings = to_ratings(samples, anchor_index=anchor_index, anchor_rating=anchor_rating)
    tail = (1.0 - CONFIDENCE) / 2.0
    return np.quantile(ratings, tail, axis=0), np.quantile(ratings, 1.0 - tail, axis=0)


def _interval_from_covariance(
    strength: FloatArray, covariance: FloatArray, anchor_index: int | None, anchor_rating: float
) -> tuple[FloatArray, FloatArray]:
    variance = np.diag(covariance).copy()
    if anchor_index is not None:
        # Var(s_i - s_anchor): the anchor's own uncertainty moves onto everyone else.
        variance += covariance[anchor_index, anchor_index] - 2.0 * covariance[:, anchor_index]
    half_width = ndtri(1.0 - (1.0 - CONFIDENCE) / 2.0) * np.sqrt(np.maximum(variance, 0.0))
    rating = to_ratings(strength, anchor_index=anchor_index, anchor_rating=anchor_rating)
    return rating - RATING_PER_LOGIT * half_width, rating + RATING_PER_LOGIT * half_width


def _model_rows(
    counts: BattleCounts,
    rating: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
) -> list[dict[str, Any]]:
    n = len(counts.models)
    per_model = np.zeros((3, n))  # votes, wins, ties
    for side, score in ((counts.model_a, counts.outcome), (counts.model_b, 1.0 - counts.outcome)):
        per_model[0] += np.bincount(side, weights=counts.count, minlength=n)
        per_model[1] += np.bincount(side, weights=counts.count * (score == 1.0), minlength=n)
        per_model[2] += np.bincount(side, weights=counts.count * (score == 0.5), minlength=n)
    rank = ranks_with_uncertainty(lower, upper)
    rows = []
    for i in np.argsort(-rating, kind="stable"):
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
            }
        )
    return rows


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
) -> Leaderboard:
    """Bradley-Terry leaderboard with 95 % intervals and ranks that respect them.

    ``ci="bootstrap"`` resamples votes ``bootstrap_rounds`` times (seeded by ``seed``);
    ``ci="sandwich"`` uses the asymptotic sandwich covariance. ``anchor`` pins that model at
    ``anchor_rating``; otherwise the mean rating is 1000.
    """
    watch = _Stopwatch()
    anchor_index = _anchor_index(counts.models, anchor)
    if not counts.models:
        return Leaderboard(rows=[], timings=watch.finish(), models=[], strength=np.zeros(0))
    pairs = PairMatrices.from_counts(counts)
    watch.lap("prepare")
    strength = _fit_pairs(pairs, ridge=ridge)
    rating = to_ratings(strength, anchor_index=anchor_index, anchor_rating=anchor_rating)
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
        lower, upper = _interval_from_bootstrap(samples, anchor_index, anchor_rating)
    elif ci == "sandwich":
        covariance = sandwich_covariance(pairs, strength, ridge=ridge)
        lower, upper = _interval_from_covariance(strength, covariance, anchor_index, anchor_rating)
    else:
        raise ValueError(f"unknown ci method {ci!r}; expected 'bootstrap' or 'sandwich'")
    watch.lap("ci")
    rows = _model_rows(counts, rating, lower, upper)
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


# --------------------------------------------------------------------------- length control
#
# "Style control" for answer length, as LMArena does it: the logit of a vote gets a term
# beta * x, where x = (len_a - len_b) / (len_a + len_b) is the normalised length difference,
# in [-1, 1]. Ratings are then what remains after crediting length. To keep inputs aggregated,
# x is binned: bin k = floor(20 * x + 0.5) (bin width 0.05, -20..20) and each bin uses
# x = k / 20, so counts are grouped per (model a, model b, outcome, length bin) cell. The
# binning error is at most 0.025 in x, far below the spread of real length differences.
# Unlike FastChat, x is not centred: the model is antisymmetric in (a, b), and a centred
# feature would smuggle in an "answer shown first" bias term.


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
    """Leaderboard with answer length as a covariate; see the section comment above.

    ``Leaderboard.length_coefficient`` is beta in rating points: what a full normalised length
    advantage (x = 1) is worth. The interval defaults to the sandwich (arena-rank's default
    too): a bootstrap here resamples (pair, bin, outcome) cells, up to 41 times as many as the
    plain leaderboard's, and costs about that much more.
    """
    watch = _Stopwatch()
    models = counts.cells.models
    anchor_index = _anchor_index(models, anchor)
    groups = _LengthGroups.from_counts(counts)
    watch.lap("prepare")
    start = np.zeros((1, len(models) + 1))
    params = _newton_length(start, groups, groups.count[None], tol=1e-9)[0]
    strength = params[:-1]
    rating = to_ratings(strength, anchor_index=anchor_index, anchor_rating=anchor_rating)
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
        lower, upper = _interval_from_bootstrap(samples[:, :-1], anchor_index, anchor_rating)
    elif ci == "sandwich":
        covariance = _length_sandwich(groups, params)[:-1, :-1]
        lower, upper = _interval_from_covariance(strength, covariance, anchor_index, anchor_rating)
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
