"""Signals from an annotator's own votes: speed, bursts, side bias, tie rates, gold accuracy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import binomtest

from annotation.fraud.config import DEFAULT_CONFIG, FraudConfig
from annotation.fraud.records import (
    BOTH_BAD,
    BOTH_BAD_RATE,
    BURST,
    GOLD,
    MODEL_A,
    SIDE,
    SPEED,
    TIE,
    TIE_RATE,
    Signal,
    VoteRecord,
)


def reading_floor_ms(read_chars: int, config: FraudConfig = DEFAULT_CONFIG) -> float:
    """Fastest plausible time to read a prompt and two answers of ``read_chars`` in total."""
    return 1000.0 * max(config.min_read_seconds, read_chars / config.chars_per_second)


def speed_signal(
    votes: Sequence[VoteRecord], config: FraudConfig = DEFAULT_CONFIG
) -> Signal | None:
    """Share of votes cast faster than the reading floor, tested against a skimmer's share."""
    timed = [v for v in votes if v.time_to_vote_ms is not None]
    n = len(timed)
    if n < config.min_timed_votes:
        return None
    fast = sum(
        1 for v in timed if (v.time_to_vote_ms or 0) < reading_floor_ms(v.read_chars, config)
    )
    share = fast / n
    p = binomtest(fast, n, config.speed_baseline_share, alternative="greater").pvalue
    reason = (
        f"speed: {fast} of {n} votes ({share:.0%}) came faster than the reading floor "
        f"({config.chars_per_second:g} chars/s, at least {config.min_read_seconds:g} s), "
        f"p = {p:.2g}"
    )
    return Signal(SPEED, share, n, reason, p, large_effect=share >= config.speed_min_share)


def burst_signal(
    votes: Sequence[VoteRecord], config: FraudConfig = DEFAULT_CONFIG
) -> Signal | None:
    """Most votes inside any window of ``burst_window_seconds``."""
    stamps = np.sort(np.array([v.tstamp for v in votes if v.tstamp is not None], dtype=float))
    if stamps.size == 0:
        return None
    in_window = np.searchsorted(stamps, stamps + config.burst_window_seconds, side="right")
    most = int((in_window - np.arange(stamps.size)).max())
    reason = f"burst: {most} votes within {config.burst_window_seconds:g} s"
    return Signal(BURST, most, stamps.size, reason, tripped=most >= config.burst_max_votes)


def side_bias_signal(
    votes: Sequence[VoteRecord], config: FraudConfig = DEFAULT_CONFIG
) -> Signal | None:
    """Binomial test of "chose the answer shown on the left" against 50 % of decisive votes.

    Sides are assigned at random, so an honest annotator's choice is independent of them.
    """
    sided = [v for v in votes if v.decisive and v.shown_left_is_a is not None]
    n = len(sided)
    if n < config.min_votes:
        return None
    left = sum(1 for v in sided if (v.winner == MODEL_A) == v.shown_left_is_a)
    share = left / n
    p = binomtest(left, n, 0.5).pvalue
    reason = (
        f"side bias: chose the left answer in {left} of {n} decisive votes ({share:.0%}), "
        f"p = {p:.2g}"
    )
    large = abs(share - 0.5) >= config.side_min_bias
    return Signal(SIDE, share, n, reason, p, large_effect=large)


def tie_signals(
    votes: Sequence[VoteRecord],
    crowd_rates: Mapping[str, float],
    config: FraudConfig = DEFAULT_CONFIG,
) -> list[Signal]:
    """Binomial tests of the tie and both-bad rates against the crowd's, in excess only.

    Fewer ties than the crowd is no sign of carelessness; a button pressed every time is.
    """
    n = len(votes)
    if n < config.min_votes:
        return []
    signals = []
    for label, name in ((TIE, TIE_RATE), (BOTH_BAD, BOTH_BAD_RATE)):
        crowd = min(max(crowd_rates.get(label, 0.0), 1e-3), 1.0 - 1e-3)
        k = sum(1 for v in votes if v.winner == label)
        rate = k / n
        p = binomtest(k, n, crowd, alternative="greater").pvalue
        reason = (
            f"{label!r} rate: {k} of {n} votes ({rate:.0%}) against {crowd:.0%} in the crowd, "
            f"p = {p:.2g}"
        )
        large = rate - crowd >= config.tie_min_excess
        signals.append(Signal(name, rate, n, reason, p, large_effect=large))
    return signals


def gold_signal(votes: Sequence[VoteRecord], config: FraudConfig = DEFAULT_CONFIG) -> Signal | None:
    """Accuracy on gold pairs, tested (one-sided) against a competent annotator's rate."""
    gold = [v.gold_correct for v in votes if v.gold_correct is not None]
    n = len(gold)
    if n < config.min_gold:
        return None
    correct = sum(gold)
    accuracy = correct / n
    p = binomtest(correct, n, config.gold_competent_rate, alternative="less").pvalue
    reason = f"gold: {correct} of {n} gold pairs right ({accuracy:.0%}), p = {p:.2g}"
    large = accuracy <= config.gold_max_accuracy
    return Signal(GOLD, accuracy, n, reason, p, large_effect=large)
