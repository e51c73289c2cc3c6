"""The detector's thresholds: ``FraudConfig`` and the defaults the benchmark was tuned with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FraudConfig:
    """Thresholds of the detector; the defaults are what the benchmark was tuned with."""

    # Multiple testing over all the tests in one ``assess`` call: "fdr" (Benjamini-Hochberg,
    # ``level`` is the false discovery rate) or "fwer" (Holm, ``level`` is the family-wise rate).
    correction: str = "fdr"
    level: float = 0.05
    # Minimum votes for the vote-count-gated signals (side, ties, crowd, promoter); the Chatbot
    # Arena paper's anomaly test also waits for a handful of votes before judging anyone.
    min_votes: int = 20
    min_timed_votes: int = 10
    min_gold: int = 5
    # Reading floor: nobody reads faster than this (skimming speed, ~3x a normal reader) ...
    chars_per_second: float = 50.0
    # ... and nobody compares two answers in less than this, however short they are.
    min_read_seconds: float = 1.5
    # Honest skimmers do beat the floor now and then; a speed test is against this share, and
    # only a majority of too-fast votes counts as a large effect.
    speed_baseline_share: float = 0.2
    speed_min_share: float = 0.75
    burst_window_seconds: float = 60.0
    burst_max_votes: int = 8
    side_min_bias: float = 0.15
    # Most people prefer the longer answer (72 % of the MT-Bench experts' decisive votes between
    # answers of markedly different lengths; the keenest of them, 88 %), and how much
    # differs from person to person: the length test waits for more votes, and a large effect
    # is a share this far from the crowd model's expectation and at least
    # ``length_min_share`` for the longer answer (or at most 1 - it): someone who picks by
    # length without reading. Below that it is a taste, and costs no trust.
    length_min_votes: int = 40
    length_min_excess: float = 0.2
    length_min_share: float = 0.95
    # How far one person's taste for length (log-odds per unit of length gap) may stray from
    # the crowd's before the crowd-disagreement test takes it as theirs: a normal prior's sd.
    length_taste_sd: float = 1.5
    tie_min_excess: float = 0.35
    crowd_min_excess: float = 0.1
    gold_competent_rate: float = 0.8
    gold_max_accuracy: float = 0.6
    promoter_min_model_votes: int = 8
    promoter_min_excess: float = 0.3
    # The combined test only counts when this many of its parts are suspicious on their own
    # (p below ``combined_part_p``): one quirk, however strong, is not a pattern.
    combined_min_parts: int = 2
    combined_part_p: float = 0.01
    # Households share a browser; an office shares more. Below this many accounts a shared
    # fingerprint only lowers trust.
    fingerprint_flag_accounts: int = 4
    lockstep_window_seconds: float = 10.0
    lockstep_min_matches: int = 10
    lockstep_min_share: float = 0.5
    # Annotators whose crowd, promoter or length p-value falls below this in the first pass
    # are left out of the second fit of the crowd model (strengths, taste for length, tie
    # rates), as are those flagged outright: enough longer-answer bots would otherwise pull
    # the crowd's taste for length towards theirs and hide.
    refit_suspect_p: float = 1e-3
    # Keeps strengths finite for a model that never lost in the votes at hand.
    bt_ridge: float = 1e-3

    def __post_init__(self) -> None:
        if self.correction not in ("fdr", "fwer"):
            raise ValueError(f"correction must be 'fdr' or 'fwer', not {self.correction!r}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), not {self.level!r}")


DEFAULT_CONFIG = FraudConfig()
