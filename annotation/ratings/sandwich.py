"""Sandwich (robust) covariance of Bradley-Terry strengths, as arena-rank computes it."""

from __future__ import annotations

import numpy as np

from annotation.ratings.bradley_terry import _laplacian, predicted_win_rates
from annotation.ratings.counts import FloatArray, PairMatrices

# arena-rank's sandwich regulariser, multiplied by the number of votes when votes are unweighted.
SANDWICH_HESSIAN_REG = 1e-5


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
