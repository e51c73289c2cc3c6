"""Pure rating engine (no Django imports).

NOTE to the engine's author: the web app uses ELO_INITIAL, winner_score(winner) and
elo_update(ra, rb, score_a, k=4) -> (new_ra, new_rb); keep these names when extending.
"""

from __future__ import annotations

ELO_K = 4.0
ELO_SCALE = 400.0
ELO_BASE = 10.0
ELO_INITIAL = 1000.0

WINNER_SCORES = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


def winner_score(winner: str) -> float:
    """Score of model A for a FastChat winner string."""
    try:
        return WINNER_SCORES[winner]
    except KeyError:
        raise ValueError(
            f"unknown winner {winner!r}; expected one of {sorted(WINNER_SCORES)}"
        ) from None


def elo_expected(ra: float, rb: float) -> float:
    return 1.0 / (1.0 + ELO_BASE ** ((rb - ra) / ELO_SCALE))


def elo_update(ra: float, rb: float, score_a: float, k: float = ELO_K) -> tuple[float, float]:
    expected_a = elo_expected(ra, rb)
    return ra + k * (score_a - expected_a), rb + k * (expected_a - score_a)
