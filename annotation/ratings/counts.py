"""Vote counts, the engine's input: one row per (model a, model b, outcome) cell.

``BattleCounts`` holds the counts a SQL ``GROUP BY`` returns; ``PairMatrices`` reduces them to
the dense per-pair statistics that the fits and intervals use. ``winner_score`` maps a winner
label to model a's score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

WINNER_SCORES: dict[str, float] = {
    "model_a": 1.0,
    "model_b": 0.0,
    "tie": 0.5,
    "tie (bothbad)": 0.5,
    # LMArena's newer dumps spell the both-bad tie this way.
    "both_bad": 0.5,
}
_VALID_SCORES = (0.0, 0.5, 1.0)


def winner_score(winner: str) -> float:
    """Score of model a for a winner label from FastChat battle logs."""
    try:
        return WINNER_SCORES[winner]
    except KeyError:
        expected = ", ".join(repr(label) for label in WINNER_SCORES)
        raise ValueError(f"unknown winner {winner!r}; expected one of {expected}") from None


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
