"""Bradley-Terry maximum-likelihood fits: batched Newton, and the shared-Hessian ("chord")
iteration that bootstrap rounds start with.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from annotation.ratings.counts import BattleCounts, FloatArray, IntArray, PairMatrices

_NEWTON_MAX_ITER = 100
_CHORD_MAX_ITER = 30
# Newton converges quadratically (error after a step ~ step^2 / 2), so stopping once a step is
# below 1e-5 leaves an error near 1e-10 log-odds units, 1e-8 rating points.
_NEWTON_STEP_TOL = 1e-5
# Bounds a single Newton step (about 700 rating points); only degenerate data (a model that
# never lost or never won) gets near it, and there the MLE does not exist anyway.
_NEWTON_MAX_STEP = 4.0


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


def predicted_win_rates(strength: FloatArray) -> FloatArray:
    """``M x M`` Bradley-Terry probability that the row model beats the column model."""
    return expit(strength[:, None] - strength[None, :])


def _laplacian(weights: FloatArray) -> FloatArray:
    """``diag(row sums) - weights``: how pairwise terms enter a gradient outer product."""
    return np.diag(weights.sum(axis=1)) - weights
