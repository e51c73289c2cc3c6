"""What the detector reads and writes: vote records, signals and per-annotator assessments,
with the winner labels and signal names they use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Answers whose lengths differ by less than this factor count as about the same length.
MARKEDLY_LONGER = 1.2

MODEL_A = "model_a"
MODEL_B = "model_b"
TIE = "tie"
BOTH_BAD = "tie (bothbad)"
WINNERS = (MODEL_A, MODEL_B, TIE, BOTH_BAD)

# Signal names, also the prefixes of the keys in ``AnnotatorAssessment.signals``.
SPEED = "speed"
BURST = "burst"
SIDE = "side_bias"
LENGTH = "length_bias"
TIE_RATE = "tie_rate"
BOTH_BAD_RATE = "bothbad_rate"
CROWD = "crowd_disagreement"
GOLD = "gold"
PROMOTER = "promoter"
COMBINED = "combined"
FINGERPRINT = "shared_fingerprint"
LOCKSTEP = "lockstep"


@dataclass(frozen=True)
class VoteRecord:
    """One vote, with what the arena knows about how it was cast.

    ``shown_left_is_a`` is None where sides were not recorded; ``read_chars`` is the length of
    the prompt plus both answers; ``length_log_ratio`` is log(length of answer A / length of
    answer B), None where unknown (``length_log_ratio``); ``gold_correct`` is None unless the
    pair had a known answer.
    """

    annotator: str
    model_a: str
    model_b: str
    winner: str
    shown_left_is_a: bool | None = None
    time_to_vote_ms: int | None = None
    read_chars: int = 0
    tstamp: float | None = None
    fingerprint: str | None = None
    gold_correct: bool | None = None
    length_log_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.winner not in WINNERS:
            raise ValueError(f"unknown winner {self.winner!r}; expected one of {WINNERS}")
        if self.model_a == self.model_b:
            raise ValueError("a model cannot battle itself")

    @property
    def decisive(self) -> bool:
        return self.winner in (MODEL_A, MODEL_B)

    @property
    def chosen_length_log_ratio(self) -> float | None:
        """log(length of the chosen answer / the other's) of a decisive vote; None where it was
        not decisive or the lengths are unknown."""
        if not self.decisive or self.length_log_ratio is None:
            return None
        return self.length_log_ratio if self.winner == MODEL_A else -self.length_log_ratio

    @property
    def chose_longer(self) -> bool | None:
        """Whether a decisive vote went to the markedly longer answer; None where it was not
        decisive or the answers are about the same length (or of unknown lengths)."""
        ratio = self.chosen_length_log_ratio
        if ratio is None or abs(ratio) < math.log(MARKEDLY_LONGER):
            return None
        return ratio > 0

    @property
    def chosen(self) -> str:
        """The model that won, or the tie label: what two lockstep accounts have in common."""
        if self.winner == MODEL_A:
            return self.model_a
        if self.winner == MODEL_B:
            return self.model_b
        return self.winner


def length_log_ratio(chars_a: int, chars_b: int) -> float | None:
    """``VoteRecord.length_log_ratio`` from the two answers' lengths in characters; None where
    an answer is empty (no ratio)."""
    if chars_a <= 0 or chars_b <= 0:
        return None
    return math.log(chars_a / chars_b)


@dataclass(frozen=True)
class Signal:
    """One signal for one annotator.

    ``statistic`` is the figure the reason quotes (a share, a rate, a count); ``p_value`` is
    None for rule-based signals, which set ``tripped`` instead.
    """

    name: str
    statistic: float
    votes: int
    reason: str
    p_value: float | None = None
    large_effect: bool = True
    tripped: bool = False


@dataclass(frozen=True)
class AnnotatorAssessment:
    annotator: str
    votes: int
    trust: float
    flagged: bool
    reasons: list[str] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
