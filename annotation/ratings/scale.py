"""The Elo-like rating scale: strengths in natural log-odds units shown as rating points."""

from __future__ import annotations

import math

from annotation.ratings.counts import FloatArray

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
# Rating points per natural log-odds unit of strength.
RATING_PER_LOGIT = SCALE / math.log(BASE)


def to_ratings(
    strength: FloatArray,
    *,
    anchor_index: int | None = None,
    anchor_rating: float = INIT_RATING,
    center: FloatArray | None = None,
) -> FloatArray:
    """Strengths (``(..., M)``, log-odds units, mean zero) on the Elo-like scale.

    Without an anchor the mean rating is 1000, as in arena-rank, or the ``center``-weighted
    mean (weights summing to 1: say, over the models that are not provisional); with one,
    model ``anchor_index`` sits at ``anchor_rating`` (in every bootstrap round, so its own
    interval collapses to a point, as in FastChat's anchored leaderboards).
    """
    if anchor_index is None and center is not None:
        shift = strength @ center
        return RATING_PER_LOGIT * (strength - shift[..., None]) + INIT_RATING
    if anchor_index is None:
        return RATING_PER_LOGIT * strength + INIT_RATING
    shift = strength[..., anchor_index, None]
    return RATING_PER_LOGIT * (strength - shift) + anchor_rating
