"""Bootstrap of Bradley-Terry strengths: exact multinomial resamples of the vote cells,
refitted in batches on a thread pool (the package docstring says why this is fast).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.special import pdtr

from annotation.ratings.bradley_terry import (
    _chord_bradley_terry,
    _fit_pairs,
    _newton_bradley_terry,
    _shared_inverse_hessian,
)
from annotation.ratings.counts import BattleCounts, FloatArray, IntArray, PairMatrices

# Dense per-round matrices are M x M; chunks of bootstrap rounds are sized to hold about this
# many matrix entries, so memory stays flat (a few tens of MB) whatever the number of votes.
_CHUNK_ENTRIES = 1 << 19
_MAX_CHUNK_ROUNDS = 32
# Cells sharing a count draw Poisson by table inversion when at least this many share it (a
# numpy call per shared count has to pay off) and the count is small enough for a table.
_TABLE_MIN_CELLS = 16
_TABLE_MAX_COUNT = 1000
# The chord iteration converges linearly at a rate r <= 1/2 (slower rounds go to Newton), so
# the error left after a step is about r / (1 - r) * step: stopping once a step is below 1e-5
# leaves at most 1e-5 log-odds units (0.002 rating points; ~1e-4 at 1M votes, where r ~ 0.06),
# far below the bootstrap's own noise.
_CHORD_STEP_TOL = 1e-5


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
