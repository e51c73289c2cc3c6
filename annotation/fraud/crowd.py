"""Signals against the crowd: a Bradley-Terry model of every vote (``crowd_strength``) and the
tests of an annotator's votes under it (crowd disagreement, promoting one model).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit
from scipy.stats import gamma as gamma_distribution
from scipy.stats import norm

from annotation.fraud.config import DEFAULT_CONFIG, FraudConfig
from annotation.fraud.records import CROWD, LENGTH, MODEL_A, PROMOTER, Signal, VoteRecord
from annotation.ratings import BattleCounts, fit_bradley_terry, winner_score

FloatArray = NDArray[np.float64]


def _length_gap(vote: VoteRecord) -> float:
    """(chosen length - other length) / (sum of both) of a decisive vote, in [-1, 1], as in
    Chatbot Arena's style control; 0 where the lengths are unknown."""
    ratio = vote.chosen_length_log_ratio
    return 0.0 if ratio is None else math.tanh(ratio / 2.0)


def _decisive_logits(
    votes: Sequence[VoteRecord], strength: Mapping[str, float]
) -> tuple[list[VoteRecord], FloatArray, FloatArray]:
    """Decisive votes on known models, the strengths' log-odds of each chosen winner, and each
    vote's length gap towards it (``_length_gap``)."""
    kept = [v for v in votes if v.decisive and v.model_a in strength and v.model_b in strength]
    logit = np.array(
        [
            strength[v.model_a] - strength[v.model_b]
            if v.winner == MODEL_A
            else strength[v.model_b] - strength[v.model_a]
            for v in kept
        ],
        dtype=float,
    )
    gap = np.array([_length_gap(v) for v in kept], dtype=float)
    return kept, logit, gap


def _decisive_probabilities(
    votes: Sequence[VoteRecord], strength: Mapping[str, float], length_effect: float = 0.0
) -> tuple[list[VoteRecord], FloatArray]:
    """Decisive votes on known models and the crowd model's probability of the chosen winner:
    the strengths' difference, plus ``length_effect`` (log-odds per unit of length gap)."""
    kept, logit, gap = _decisive_logits(votes, strength)
    return kept, expit(logit + length_effect * gap)


# The largest step of the length-effect fit, in log-odds per unit of length gap, and how
# many steps it may take to settle.
_MAX_STEP = 2.0
_FIT_STEPS = 50


def _fit_length_effect(
    logit: FloatArray,
    gap: FloatArray,
    *,
    prior: float,
    prior_sd: float | None,
) -> float:
    """The one-parameter logistic fit (damped Newton) behind ``crowd_length_effect``, on the
    strengths' log-odds of each chosen winner and the length gaps towards it."""
    known = gap != 0.0
    precision = 0.0 if prior_sd is None else 1.0 / prior_sd**2
    one_sided = (gap[known] > 0).all() or (gap[known] < 0).all()
    if not known.any() or (one_sided and prior_sd is None):
        return prior
    offset, x = logit[known], gap[known]
    effect = prior
    for _ in range(_FIT_STEPS):
        p = expit(offset + effect * x)  # P(the chosen answer is chosen) under the model
        gradient = float(((1.0 - p) * x).sum()) - precision * (effect - prior)
        hessian = float((p * (1.0 - p) * x * x).sum()) + precision
        # Damped: a plain Newton step can overshoot on a handful of lopsided votes.
        step = float(np.clip(gradient / max(hessian, 1e-12), -_MAX_STEP, _MAX_STEP))
        effect += step
        if abs(step) < 1e-8:
            return float(effect)
    return prior  # did not settle: the crowd's (or no) taste rather than a runaway one


def crowd_length_effect(
    votes: Iterable[VoteRecord],
    strength: Mapping[str, float],
    *,
    prior: float = 0.0,
    prior_sd: float | None = None,
) -> float:
    """How much the crowd favours the longer answer, in log-odds per unit of length gap on top
    of the models' strengths: a one-parameter logistic fit (Newton) on the decisive votes with
    known lengths, ``prior`` where no vote says.

    People prefer longer answers (the MT-Bench experts picked the markedly longer one in 72 %
    of their decisive votes), so without it a keen reader of detailed answers looks like
    someone who disagrees with the crowd. With ``prior_sd`` it is one annotator's own taste,
    shrunk towards the crowd's (``prior``) by a normal prior of that spread.
    """
    _, logit, gap = _decisive_logits(list(votes), strength)
    return _fit_length_effect(logit, gap, prior=prior, prior_sd=prior_sd)


def length_bias_signal(
    votes: Sequence[VoteRecord],
    strength: Mapping[str, float],
    config: FraudConfig = DEFAULT_CONFIG,
    *,
    length_effect: float = 0.0,
) -> Signal | None:
    """Does this annotator pick the markedly longer (or shorter) answer far more often than
    the crowd model (strengths and the crowd's own taste for length) expects on the same pairs?

    Catches the bot that picks the longer answer without reading (or the shorter one), which
    the other tests miss: it is decisive, on either side, at any speed it likes, and agrees
    with the crowd often. Honest tastes for length differ a lot, so it needs more votes than
    the other tests (``length_min_votes``) and a large effect is near-total: at least
    ``length_min_share`` of the votes for the longer answer, or at most 1 - it. Two-sided:
    the tail in the direction of the excess, doubled; exact (Poisson-binomial) where the
    effect is large, a normal approximation elsewhere.
    """
    kept, chosen = _decisive_probabilities(votes, strength, length_effect)
    longer = [v.chose_longer for v in kept]
    sized = np.array([c is not None for c in longer], dtype=bool)
    n = int(sized.sum())
    if n < config.length_min_votes:
        return None
    chose_longer = np.array([bool(c) for c in longer], dtype=bool)[sized]
    # P(the longer answer is chosen): the chosen one's where it was the longer, else the rest.
    expected = np.where(chose_longer, chosen[sized], 1.0 - chosen[sized])
    longer_count = int(chose_longer.sum())
    share = longer_count / n
    excess = share - float(expected.mean())
    towards_longer = excess >= 0.0
    extreme = (
        share >= config.length_min_share
        if towards_longer
        else share <= 1.0 - config.length_min_share
    )
    large = abs(excess) >= config.length_min_excess and extreme
    if large:
        tail = (
            _poisson_binomial_sf(expected, longer_count)
            if towards_longer
            else _poisson_binomial_sf(1.0 - expected, n - longer_count)
        )
    else:
        sd = math.sqrt(max(float((expected * (1.0 - expected)).sum()), 1e-12))
        tail = float(norm.sf((abs(longer_count - float(expected.sum())) - 0.5) / sd))
    p = min(1.0, 2.0 * tail)
    reason = (
        f"length bias: chose the longer answer in {longer_count} of {n} decisive votes between "
        f"answers of different lengths ({share:.0%}) where the crowd model expects "
        f"{float(expected.mean()):.0%}, p = {p:.2g}"
    )
    return Signal(LENGTH, share, n, reason, p, large_effect=large)


def crowd_disagreement_signal(
    votes: Sequence[VoteRecord],
    strength: Mapping[str, float],
    config: FraudConfig = DEFAULT_CONFIG,
    *,
    length_effect: float = 0.0,
) -> Signal | None:
    """Fisher's combination of per-vote p-values under the crowd's Bradley-Terry model.

    As in the Chatbot Arena paper's anomalous-user test, each decisive vote gets a p-value for
    "an outcome at least this unlikely" and the annotator's p-values are combined with
    Fisher's ``-2 sum ln p``. A single binary vote has a discrete p-value, which makes Fisher's
    chi-square null badly conservative (a random voter would never stand out), so each vote
    uses Lancaster's mid-p instead, and the sum is referred to a gamma distribution with the
    exact null mean and variance of the sum (also Lancaster's proposal). Ties carry no
    direction here; the tie-rate tests cover them.
    """
    # The annotator's own taste for length, shrunk towards the crowd's: a strong taste is a
    # taste, not a disagreement (the length test looks at the extreme one).
    kept, logit, gap = _decisive_logits(votes, strength)
    own_effect = _fit_length_effect(
        logit, gap, prior=length_effect, prior_sd=config.length_taste_sd
    )
    chosen = expit(logit + own_effect * gap)
    n = len(kept)
    if n < config.min_votes:
        return None
    favoured = np.maximum(chosen, 1.0 - chosen)
    # mid-p of an outcome with probability r when the other has 1 - r.
    mid_favoured = 1.0 - favoured / 2.0
    mid_underdog = (1.0 - favoured) / 2.0
    score_favoured = -2.0 * np.log(mid_favoured)
    score_underdog = -2.0 * np.log(mid_underdog)
    upset = chosen < 0.5
    observed = float(np.where(upset, score_underdog, score_favoured).sum())
    mean_each = favoured * score_favoured + (1.0 - favoured) * score_underdog
    var_each = favoured * score_favoured**2 + (1.0 - favoured) * score_underdog**2 - mean_each**2
    mean, var = float(mean_each.sum()), float(var_each.sum())
    if var <= 0.0:
        return None  # every pair a coin flip under the model: nothing to disagree with
    p = float(gamma_distribution.sf(observed, mean**2 / var, scale=var / mean))
    upset_share = float(upset.mean())
    expected_upsets = float((1.0 - favoured).mean())
    excess = upset_share - expected_upsets
    reason = (
        f"crowd disagreement: picked the crowd's underdog in {upset_share:.0%} of {n} decisive "
        f"votes where the crowd model expects {expected_upsets:.0%}, p = {p:.2g}"
    )
    return Signal(CROWD, excess, n, reason, p, large_effect=excess >= config.crowd_min_excess)


def _poisson_binomial_sf(probabilities: FloatArray, k: int) -> float:
    """P(at least k successes) for independent trials with the given success probabilities."""
    distribution = np.ones(1)
    for p in probabilities:
        distribution = np.convolve(distribution, np.array([1.0 - p, p]))
    return float(min(1.0, distribution[k:].sum()))


def promoter_signal(
    votes: Sequence[VoteRecord],
    strength: Mapping[str, float],
    config: FraudConfig = DEFAULT_CONFIG,
    *,
    length_effect: float = 0.0,
) -> Signal | None:
    """Does one model win this annotator's votes far more often than the crowd model expects?

    Per model: an exact Poisson-binomial test of its wins in the annotator's decisive votes
    that include it; the smallest p-value is Bonferroni-corrected over the models tested.
    """
    kept, chosen = _decisive_probabilities(votes, strength, length_effect)
    if len(kept) < config.min_votes:
        return None
    wins: dict[str, list[float]] = defaultdict(list)
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for vote, p_chosen in zip(kept, chosen, strict=True):
        winner = vote.chosen
        loser = vote.model_b if winner == vote.model_a else vote.model_a
        wins[winner].append(float(p_chosen))
        outcomes[winner].append(True)
        wins[loser].append(float(1.0 - p_chosen))
        outcomes[loser].append(False)
    tested = {
        m: np.array(ps) for m, ps in wins.items() if len(ps) >= config.promoter_min_model_votes
    }
    if not tested:
        return None
    best: tuple[float, str, float, int, int, float] | None = None
    for model, probabilities in tested.items():
        won = sum(outcomes[model])
        n = probabilities.size
        excess = won / n - float(probabilities.mean())
        # The exact tail costs O(n^2); only models already far above expectation need it.
        p = (
            _poisson_binomial_sf(probabilities, won)
            if excess >= config.promoter_min_excess
            else 1.0
        )
        if best is None or (p, -excess) < (best[0], -best[2]):
            best = (p, model, excess, won, n, float(probabilities.mean()))
    assert best is not None
    p, model, excess, won, n, expected = best
    p = min(1.0, p * len(tested))
    reason = (
        f"promoter: {model} won {won} of {n} of this annotator's decisive votes "
        f"({won / n:.0%}) where the crowd model expects {expected:.0%}, p = {p:.2g}"
    )
    large = excess >= config.promoter_min_excess
    return Signal(PROMOTER, excess, n, reason, p, large_effect=large)


def crowd_strength(
    votes: Iterable[VoteRecord], *, models: Sequence[str], ridge: float
) -> dict[str, float]:
    """Bradley-Terry strengths (log-odds) of ``models`` fitted on ``votes``, ties as half-wins."""
    index = {model: i for i, model in enumerate(models)}
    cells: Counter[tuple[int, int, float]] = Counter()
    for vote in votes:
        cells[index[vote.model_a], index[vote.model_b], winner_score(vote.winner)] += 1
    counts = BattleCounts(
        models=list(models),
        model_a=np.array([a for a, _, _ in cells], dtype=np.int64),
        model_b=np.array([b for _, b, _ in cells], dtype=np.int64),
        outcome=np.array([score for _, _, score in cells], dtype=np.float64),
        count=np.array(list(cells.values()), dtype=np.int64),
    )
    strength = fit_bradley_terry(counts, ridge=ridge)
    return dict(zip(models, strength.tolist(), strict=True))
