"""``assess``: every signal for every annotator, the combined test, the multiple-testing
correction over all of them, and the resulting trust and flags.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from scipy.stats import chi2

from annotation.fraud.accounts import (
    LockstepPair,
    _rule_signals,
    accounts_by_fingerprint,
    corroborated_fingerprints,
    lockstep_pairs,
)
from annotation.fraud.behaviour import (
    burst_signal,
    gold_signal,
    side_bias_signal,
    speed_signal,
    tie_signals,
)
from annotation.fraud.config import DEFAULT_CONFIG, FraudConfig
from annotation.fraud.crowd import (
    crowd_disagreement_signal,
    crowd_length_effect,
    crowd_strength,
    length_bias_signal,
    promoter_signal,
)
from annotation.fraud.records import (
    BOTH_BAD,
    BOTH_BAD_RATE,
    COMBINED,
    CROWD,
    FINGERPRINT,
    LENGTH,
    PROMOTER,
    SPEED,
    TIE,
    TIE_RATE,
    AnnotatorAssessment,
    Signal,
    VoteRecord,
)

# How much one signal lowers trust at full severity: a flagged signal leaves 10 % of the trust.
_TRUST_HIT = 0.9


def combined_signal(
    signals: Sequence[Signal], config: FraudConfig = DEFAULT_CONFIG
) -> Signal | None:
    """Fisher's combination of an annotator's separate tests, for careless voters.

    A random clicker with a few dozen votes is only mildly odd on every test (a few too many
    ties, a few too many upsets, a couple of gold pairs wrong) and passes each one; together
    the tests see it. The parts look at different aspects of the votes (sides are assigned
    at random, gold pairs are separate items), so they are treated as independent; the
    tie and both-bad tests, which share votes, enter as their smaller p-value, doubled. Speed
    and length bias stay out: plenty of honest people skim now and then or like detail, so
    a mild excess of either is a taste, not a sign of carelessness.
    """
    parts: dict[str, float] = {}
    for signal in signals:
        if signal.p_value is None or signal.name in (COMBINED, SPEED, LENGTH):
            continue
        key = TIE_RATE if signal.name == BOTH_BAD_RATE else signal.name
        p = min(1.0, 2.0 * signal.p_value) if key == TIE_RATE else signal.p_value
        parts[key] = min(parts.get(key, 1.0), p)
    if len(parts) < 2:
        return None
    values = np.maximum(np.array(list(parts.values())), 1e-300)
    statistic = float(-2.0 * np.log(values).sum())
    p = float(chi2.sf(statistic, 2 * values.size))
    suspicious = int((values < config.combined_part_p).sum())
    reason = (
        f"combined: {suspicious} of {values.size} tests suspicious on their own "
        f"(p < {config.combined_part_p:g}), together p = {p:.2g}"
    )
    large = suspicious >= config.combined_min_parts
    return Signal(COMBINED, suspicious, values.size, reason, p, large_effect=large)


def _model_signals(
    votes: Sequence[VoteRecord],
    strength: Mapping[str, float],
    length_effect: float,
    config: FraudConfig,
) -> list[Signal]:
    found = [
        crowd_disagreement_signal(votes, strength, config, length_effect=length_effect),
        promoter_signal(votes, strength, config, length_effect=length_effect),
        length_bias_signal(votes, strength, config, length_effect=length_effect),
    ]
    return [s for s in found if s is not None]


def _with_combined(signals: list[Signal], config: FraudConfig) -> list[Signal]:
    combined = combined_signal(signals, config)
    return signals if combined is None else [*signals, combined]


def _crowd_rates(totals: Counter[str], own: Counter[str]) -> dict[str, float]:
    """Tie and both-bad rates of the crowd without the annotator's own votes."""
    n = sum(totals.values()) - sum(own.values())
    if n <= 0:
        return {}
    return {label: (totals[label] - own[label]) / n for label in (TIE, BOTH_BAD)}


def _rejections(
    signals: Mapping[str, list[Signal]], config: FraudConfig
) -> tuple[set[tuple[str, int]], int]:
    """(annotator, signal position) of every test the correction rejects, and the count.

    Benjamini-Hochberg steps up: every test up to the last k with p_(k) <= k / m * level.
    Holm steps down: tests while p_(k) <= level / (m - k + 1).
    """
    tests = [
        (s.p_value, annotator, i)
        for annotator, found in signals.items()
        for i, s in enumerate(found)
        if s.p_value is not None
    ]
    tests.sort(key=lambda test: test[0])
    m = len(tests)
    last = -1
    for k, (p, _, _) in enumerate(tests):
        if config.correction == "fwer":
            if p > config.level / (m - k):
                break
            last = k
        elif p <= (k + 1) / m * config.level:
            last = k
    return {(annotator, i) for _, annotator, i in tests[: last + 1]}, m


def _fired(
    signals: Mapping[str, list[Signal]], config: FraudConfig
) -> tuple[dict[str, list[Signal]], int]:
    rejected, tests = _rejections(signals, config)
    fired = {
        annotator: [
            s
            for i, s in enumerate(found)
            if s.tripped or ((annotator, i) in rejected and s.large_effect)
        ]
        for annotator, found in signals.items()
    }
    return fired, tests


def _severity(signal: Signal, *, fired: bool, level: float) -> float:
    """How strongly a signal speaks against an annotator, 0 (not at all) to 1 (flag)."""
    if fired:
        return 1.0
    if signal.p_value is None:
        # A rule below its threshold; a shared fingerprint is still worth a look.
        return 0.5 if signal.name == FINGERPRINT else 0.0
    if signal.name == LENGTH and not signal.large_effect:
        return 0.0  # a taste for long (or short) answers, however clear, is no carelessness
    # log p / log level: 0 at p = 1, 1 at the Bonferroni level of the whole family.
    severity = min(1.0, max(0.0, math.log(max(signal.p_value, 1e-300)) / math.log(level)))
    # A tiny p-value on a tiny effect is a real but harmless quirk.
    return severity if signal.large_effect else 0.5 * severity


def _corroborate_fingerprints(
    signals: dict[str, list[Signal]],
    fired: dict[str, list[Signal]],
    accounts: Mapping[str, set[str]],
    config: FraudConfig,
) -> None:
    """Flag, in place, the accounts on a crowded fingerprint one of whose accounts is flagged
    for how it voted (see `corroborated_fingerprints`)."""
    flagged = {a for a, found in fired.items() if found}
    for annotator, partner in corroborated_fingerprints(accounts, flagged, config).items():
        for i, signal in enumerate(signals[annotator]):
            if signal.name == FINGERPRINT:
                reason = f"{signal.reason}, one of them flagged ({partner})"
                signals[annotator][i] = replace(signal, reason=reason, tripped=True)
                fired[annotator].append(signals[annotator][i])


def assess(
    votes: Sequence[VoteRecord], *, config: FraudConfig = DEFAULT_CONFIG
) -> list[AnnotatorAssessment]:
    """Assess every annotator in ``votes``; the least trusted first.

    ``trust`` is in (0, 1]: each signal multiplies it by ``1 - 0.9 * severity``, severity
    growing with ``log p`` up to 1 at the family's Bonferroni level (or for a tripped rule).
    ``flagged`` is True when a test survives the FDR correction with a large effect, or a
    rule trips; ``reasons`` then names it, along with any weaker signal worth a look. Pure and
    deterministic: the same votes give the same assessments.
    """
    by_annotator: dict[str, list[VoteRecord]] = defaultdict(list)
    for vote in votes:
        by_annotator[vote.annotator].append(vote)
    if not by_annotator:
        return []
    models = sorted({m for v in votes for m in (v.model_a, v.model_b)})
    label_counts = {a: Counter(v.winner for v in vs) for a, vs in by_annotator.items()}
    accounts = accounts_by_fingerprint(votes)
    partners: dict[str, list[LockstepPair]] = defaultdict(list)
    for pair in lockstep_pairs(votes, config):
        partners[pair.first].append(pair)
        partners[pair.second].append(pair)

    def judge_all(crowd: Sequence[str]) -> dict[str, list[Signal]]:
        """Every annotator's signals against the crowd of ``crowd`` (annotators): its
        Bradley-Terry model, its length effect, its tie and both-bad rates."""
        trusted = [v for a in crowd for v in by_annotator[a]]
        strength = crowd_strength(trusted, models=models, ridge=config.bt_ridge)
        length_effect = crowd_length_effect(trusted, strength)
        in_crowd = set(crowd)
        labels = sum((label_counts[a] for a in crowd), Counter())
        result = {}
        for annotator, own in by_annotator.items():
            # Whoever is outside the crowd has nothing of its own to take out of its rates.
            inside = annotator in in_crowd
            own_labels = label_counts[annotator] if inside else Counter()
            found = [
                speed_signal(own, config),
                burst_signal(own, config),
                side_bias_signal(own, config),
                gold_signal(own, config),
            ]
            signals = [s for s in found if s is not None]
            signals += tie_signals(own, _crowd_rates(labels, own_labels), config)
            fingerprints = {v.fingerprint for v in own if v.fingerprint is not None}
            signals += _rule_signals(annotator, fingerprints, accounts, partners, config)
            signals += _model_signals(own, strength, length_effect, config)
            result[annotator] = _with_combined(signals, config)
        return result

    # Pass 1: everyone, against a crowd model fitted on every vote.
    signals = judge_all(list(by_annotator))
    fired, _ = _fired(signals, config)
    suspects = {
        a
        for a, found in signals.items()
        if fired[a]
        or any(
            s.name in (CROWD, PROMOTER, LENGTH) and (s.p_value or 1.0) < config.refit_suspect_p
            for s in found
        )
    }
    # Pass 2: the crowd without the suspects judges everyone, suspects included.
    if suspects and len(suspects) < len(by_annotator):
        signals = judge_all([a for a in by_annotator if a not in suspects])
        fired, _ = _fired(signals, config)
    _corroborate_fingerprints(signals, fired, accounts, config)
    level = config.level / max(_rejections(signals, config)[1], 1)  # per test of the family

    assessments = []
    for annotator, found in signals.items():
        trust = 1.0
        reasons = []
        numbers: dict[str, float] = {}
        for signal in found:
            is_fired = any(signal is s for s in fired[annotator])
            severity = _severity(signal, fired=is_fired, level=level)
            trust *= 1.0 - _TRUST_HIT * severity
            if severity >= 0.35:
                reasons.append(("FLAG " if is_fired else "") + signal.reason)
            numbers[signal.name] = float(signal.statistic)
            numbers[f"{signal.name}_votes"] = float(signal.votes)
            if signal.p_value is not None:
                numbers[f"{signal.name}_p"] = float(signal.p_value)
        assessments.append(
            AnnotatorAssessment(
                annotator=annotator,
                votes=len(by_annotator[annotator]),
                trust=trust,
                flagged=bool(fired[annotator]),
                reasons=reasons,
                signals=numbers,
            )
        )
    assessments.sort(key=lambda a: (a.trust, a.annotator))
    return assessments
