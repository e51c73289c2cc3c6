"""What the detector reads and writes: vote records, signals and per-annotator assessments,
with the winner labels and signal names they use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODEL_A = "model_a"
MODEL_B = "model_b"
TIE = "tie"
BOTH_BAD = "tie (bothbad)"
WINNERS = (MODEL_A, MODEL_B, TIE, BOTH_BAD)

# Signal names, also the prefixes of the keys in ``AnnotatorAssessment.signals``.
SPEED = "speed"
BURST = "burst"
SIDE = "side_bias"
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
    the prompt plus both answers; ``gold_correct`` is None unless the pair had a known answer.
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

    def __post_init__(self) -> None:
        if self.winner not in WINNERS:
            raise ValueError(f"unknown winner {self.winner!r}; expected one of {WINNERS}")
        if self.model_a == self.model_b:
            raise ValueError("a model cannot battle itself")

    @property
    def decisive(self) -> bool:
        return self.winner in (MODEL_A, MODEL_B)

    @property
    def chosen(self) -> str:
        """The model that won, or the tie label: what two lockstep accounts have in common."""
        if self.winner == MODEL_A:
            return self.model_a
        if self.winner == MODEL_B:
            return self.model_b
        return self.winner


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
