"""Fraud statistics for an open arena: find bots and careless voters from their votes alone.

No Django here, only numpy and scipy, so the detector can be tested and benchmarked without a
database. The caller turns votes into ``VoteRecord``s and gets one ``AnnotatorAssessment`` per
annotator back from ``assess``.

Every signal is computed per annotator and is one of two kinds:

* a statistical test with a p-value (speed, side bias, tie rates, crowd disagreement, gold
  accuracy, promoting one model). Honest people are not exactly average, and with hundreds of
  votes a tiny but real deviation (a slight lean to the left answer) reaches any significance
  level, so a test only counts when its effect is also large (``Signal.large_effect``);
* a rule with a threshold (bursts of votes, many accounts on one device fingerprint, lockstep
  voting with another account), for behaviour that has no sensible null distribution.

A test counts as evidence after a Benjamini-Hochberg correction over every p-value computed in
one ``assess`` call (all annotators, all signals) at false discovery rate ``FraudConfig.level``:
among the tests that count, at most that share is expected to be wrong when the null models
hold. That is the quantity an admin cares about (how many of the flagged are honest), and it
is far more powerful than a family-wise correction when an arena has many bots. With no bots
at all it is as strict as a family-wise correction (the chance that anyone is flagged by a test
is at most ``level``). ``FraudConfig(correction="fwer")`` uses Holm's family-wise correction
instead, for arenas that would rather miss bots than flag anyone honest.
Signals that need a sample are skipped (absent, not "passed") below their vote minimum.

Crowd disagreement and promotion compare votes with a Bradley-Terry model of the crowd
(``annotation.ratings``). A large ring of bots would drag that model towards itself, so the
model is fitted twice: once on every vote, then once more without every annotator the first
pass found suspicious, and the second fit judges everyone. A suspect is thereby judged against
a model it did not shape (the cheap form of a leave-one-out refit: one fit, not one per
annotator).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit
from scipy.stats import binomtest, chi2
from scipy.stats import gamma as gamma_distribution

from annotation.ratings import BattleCounts, fit_bradley_terry, winner_score

FloatArray = NDArray[np.float64]

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

# How much one signal lowers trust at full severity: a flagged signal leaves 10 % of the trust.
_TRUST_HIT = 0.9


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
    # Annotators whose crowd or promoter p-value falls below this in the first pass are left
    # out of the second Bradley-Terry fit, as are those flagged outright.
    refit_suspect_p: float = 1e-3
    # Keeps strengths finite for a model that never lost in the votes at hand.
    bt_ridge: float = 1e-3

    def __post_init__(self) -> None:
        if self.correction not in ("fdr", "fwer"):
            raise ValueError(f"correction must be 'fdr' or 'fwer', not {self.correction!r}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), not {self.level!r}")


DEFAULT_CONFIG = FraudConfig()


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


@dataclass(frozen=True)
class LockstepPair:
    """Two accounts that cast the same vote on the same pair within seconds, again and again."""

    first: str
    second: str
    matches: int
    share: float  # matches over the smaller account's timestamped votes


# --------------------------------------------------------------------------- per-annotator signals


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


def _decisive_probabilities(
    votes: Sequence[VoteRecord], strength: Mapping[str, float]
) -> tuple[list[VoteRecord], FloatArray]:
    """Decisive votes on known models and the model's probability of the chosen winner."""
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
    return kept, expit(logit)


def crowd_disagreement_signal(
    votes: Sequence[VoteRecord],
    strength: Mapping[str, float],
    config: FraudConfig = DEFAULT_CONFIG,
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
    kept, chosen = _decisive_probabilities(votes, strength)
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
) -> Signal | None:
    """Does one model win this annotator's votes far more often than the crowd model expects?

    Per model: an exact Poisson-binomial test of its wins in the annotator's decisive votes
    that include it; the smallest p-value is Bonferroni-corrected over the models tested.
    """
    kept, chosen = _decisive_probabilities(votes, strength)
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


def combined_signal(
    signals: Sequence[Signal], config: FraudConfig = DEFAULT_CONFIG
) -> Signal | None:
    """Fisher's combination of an annotator's separate tests, for careless voters.

    A random clicker with a few dozen votes is only mildly odd on every test (a few too many
    ties, a few too many upsets, a couple of gold pairs wrong) and passes each one; together
    the tests see it. The parts look at different aspects of the votes (sides are assigned
    at random, gold pairs are separate items), so they are treated as independent; the
    tie and both-bad tests, which share votes, enter as their smaller p-value, doubled.
    """
    parts: dict[str, float] = {}
    for signal in signals:
        if signal.p_value is None or signal.name in (COMBINED, SPEED):
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


def accounts_by_fingerprint(votes: Iterable[VoteRecord]) -> dict[str, set[str]]:
    """Fingerprint to the accounts seen with it (every fingerprint, shared or not)."""
    accounts: dict[str, set[str]] = defaultdict(set)
    for vote in votes:
        if vote.fingerprint is not None:
            accounts[vote.fingerprint].add(vote.annotator)
    return dict(accounts)


def lockstep_pairs(
    votes: Sequence[VoteRecord], config: FraudConfig = DEFAULT_CONFIG
) -> list[LockstepPair]:
    """Pairs of accounts casting the same vote on the same model pair within seconds.

    Votes are grouped by (unordered model pair, chosen model or tie label) and swept in time
    order, so the cost grows with the number of near-simultaneous identical votes, not with
    the square of the number of accounts. Only pairs with ``lockstep_min_matches`` matches
    covering ``lockstep_min_share`` of the smaller account's votes are returned: two honest
    people agree on a popular pair in the same minute now and then, not every time.
    """
    groups: dict[tuple[str, str, str], list[tuple[float, str]]] = defaultdict(list)
    timed_votes: Counter[str] = Counter()
    for vote in votes:
        if vote.tstamp is None:
            continue
        low, high = sorted((vote.model_a, vote.model_b))
        groups[low, high, vote.chosen].append((vote.tstamp, vote.annotator))
        timed_votes[vote.annotator] += 1
    matches: Counter[tuple[str, str]] = Counter()
    window = config.lockstep_window_seconds
    for entries in groups.values():
        entries.sort()
        for i, (stamp, annotator) in enumerate(entries):
            for later_stamp, other in entries[i + 1 :]:
                if later_stamp - stamp > window:
                    break
                if other != annotator:
                    matches[min(annotator, other), max(annotator, other)] += 1
    pairs = []
    for (first, second), count in matches.items():
        share = count / min(timed_votes[first], timed_votes[second])
        if count >= config.lockstep_min_matches and share >= config.lockstep_min_share:
            pairs.append(LockstepPair(first, second, count, min(share, 1.0)))
    return sorted(pairs, key=lambda pair: (-pair.matches, pair.first, pair.second))


# --------------------------------------------------------------------------- the crowd model


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


# --------------------------------------------------------------------------- assessment


def _rule_signals(
    annotator: str,
    fingerprints: set[str],
    accounts: Mapping[str, set[str]],
    partners: Mapping[str, list[LockstepPair]],
    config: FraudConfig,
) -> list[Signal]:
    signals = []
    if fingerprints:
        shared = max(fingerprints, key=lambda fp: (len(accounts[fp]), fp))
        n = len(accounts[shared])
        if n >= 2:
            reason = f"shared fingerprint: {n} accounts voted from one device fingerprint"
            tripped = n >= config.fingerprint_flag_accounts
            signals.append(Signal(FINGERPRINT, n, n, reason, tripped=tripped))
    mine = partners.get(annotator, [])
    if mine:
        top = mine[0]
        other = top.second if top.first == annotator else top.first
        reason = (
            f"lockstep: cast {top.matches} identical votes within "
            f"{config.lockstep_window_seconds:g} s of {other} ({top.share:.0%} of the "
            f"smaller account's votes), {len(mine)} such partner(s)"
        )
        signals.append(Signal(LOCKSTEP, top.matches, top.matches, reason, tripped=True))
    return signals


def _model_signals(
    votes: Sequence[VoteRecord], strength: Mapping[str, float], config: FraudConfig
) -> list[Signal]:
    found = [
        crowd_disagreement_signal(votes, strength, config),
        promoter_signal(votes, strength, config),
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
    # log p / log level: 0 at p = 1, 1 at the Bonferroni level of the whole family.
    severity = min(1.0, max(0.0, math.log(max(signal.p_value, 1e-300)) / math.log(level)))
    # A tiny p-value on a tiny effect is a real but harmless quirk.
    return severity if signal.large_effect else 0.5 * severity


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

    def behaviour_signals(reference: Counter[str]) -> dict[str, list[Signal]]:
        result = {}
        for annotator, own in by_annotator.items():
            own_counts = label_counts[annotator] if annotator not in suspects else Counter()
            found = [
                speed_signal(own, config),
                burst_signal(own, config),
                side_bias_signal(own, config),
                gold_signal(own, config),
            ]
            signals = [s for s in found if s is not None]
            signals += tie_signals(own, _crowd_rates(reference, own_counts), config)
            fingerprints = {v.fingerprint for v in own if v.fingerprint is not None}
            signals += _rule_signals(annotator, fingerprints, accounts, partners, config)
            result[annotator] = signals
        return result

    # Pass 1: everyone, against a crowd model fitted on every vote.
    suspects: set[str] = set()
    totals = sum(label_counts.values(), Counter())
    behaviour = behaviour_signals(totals)
    strength = crowd_strength(votes, models=models, ridge=config.bt_ridge)
    signals = {
        a: _with_combined(behaviour[a] + _model_signals(own, strength, config), config)
        for a, own in by_annotator.items()
    }
    fired, _ = _fired(signals, config)
    suspects = {
        a
        for a, found in signals.items()
        if fired[a]
        or any(
            s.name in (CROWD, PROMOTER) and (s.p_value or 1.0) < config.refit_suspect_p
            for s in found
        )
    }
    # Pass 2: the crowd without the suspects judges everyone, suspects included.
    if suspects and len(suspects) < len(by_annotator):
        trusted = [v for v in votes if v.annotator not in suspects]
        strength = crowd_strength(trusted, models=models, ridge=config.bt_ridge)
        reference = sum((label_counts[a] for a in by_annotator if a not in suspects), Counter())
        behaviour = behaviour_signals(reference)
        signals = {
            a: _with_combined(behaviour[a] + _model_signals(own, strength, config), config)
            for a, own in by_annotator.items()
        }
        fired, _ = _fired(signals, config)
    _, tests = _rejections(signals, config)
    level = config.level / max(tests, 1)

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
