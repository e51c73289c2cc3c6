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

# The package, one module per sub-domain:
# counts (input cells), scale (rating points), elo (online Elo), bradley_terry (the fit),
# bootstrap and sandwich (intervals), leaderboards (boards and matrices), length (length control).
# Every name other code uses is re-exported here; import from ``annotation.ratings``.

from __future__ import annotations

from annotation.ratings.bootstrap import _resample_cells, bootstrap_strengths
from annotation.ratings.bradley_terry import fit_bradley_terry, predicted_win_rates
from annotation.ratings.counts import (
    WINNER_SCORES,
    BattleCounts,
    FloatArray,
    IntArray,
    PairMatrices,
    winner_score,
)
from annotation.ratings.elo import (
    ELO_BASE,
    ELO_INITIAL,
    ELO_K,
    ELO_SCALE,
    compute_online_elo,
    elo_expected,
    elo_update,
)
from annotation.ratings.leaderboards import (
    CONFIDENCE,
    PROVISIONAL_VOTES,
    CiMethod,
    Leaderboard,
    battle_count_matrix,
    category_leaderboards,
    leaderboard,
    ranks_with_uncertainty,
    win_rate_matrix,
)
from annotation.ratings.length import (
    LENGTH_BINS_PER_UNIT,
    LengthBattleCounts,
    length_controlled_leaderboard,
    length_diff_bin,
)
from annotation.ratings.sandwich import SANDWICH_HESSIAN_REG, sandwich_covariance
from annotation.ratings.scale import BASE, INIT_RATING, RATING_PER_LOGIT, SCALE, to_ratings

__all__ = [
    "BASE",
    "CONFIDENCE",
    "ELO_BASE",
    "ELO_INITIAL",
    "ELO_K",
    "ELO_SCALE",
    "INIT_RATING",
    "LENGTH_BINS_PER_UNIT",
    "PROVISIONAL_VOTES",
    "RATING_PER_LOGIT",
    "SANDWICH_HESSIAN_REG",
    "SCALE",
    "WINNER_SCORES",
    "BattleCounts",
    "CiMethod",
    "FloatArray",
    "IntArray",
    "Leaderboard",
    "LengthBattleCounts",
    "PairMatrices",
    "_resample_cells",
    "battle_count_matrix",
    "bootstrap_strengths",
    "category_leaderboards",
    "compute_online_elo",
    "elo_expected",
    "elo_update",
    "fit_bradley_terry",
    "leaderboard",
    "length_controlled_leaderboard",
    "length_diff_bin",
    "predicted_win_rates",
    "ranks_with_uncertainty",
    "sandwich_covariance",
    "to_ratings",
    "win_rate_matrix",
    "winner_score",
]
