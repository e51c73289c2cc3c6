"""Online Elo as FastChat computes it: ratings updated vote by vote, so order matters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from annotation.ratings.counts import winner_score
from annotation.ratings.scale import BASE, INIT_RATING, SCALE

ELO_K = 4.0
# Names the web vote path uses (annotation.services); keep them.
ELO_SCALE = SCALE
ELO_BASE = BASE
ELO_INITIAL = INIT_RATING


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
