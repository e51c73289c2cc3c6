"""Fraud statistics for an open arena: find bots and careless voters from their votes alone.

No Django here, only numpy and scipy, so the detector can be tested and benchmarked without a
database. The caller turns votes into ``VoteRecord``s and gets one ``AnnotatorAssessment`` per
annotator back from ``assess``.

Every signal is computed per annotator and is one of two kinds:

* a statistical test with a p-value (speed, side bias, length bias, tie rates, crowd
  disagreement, gold accuracy, promoting one model). Honest people are not exactly average,
  and with hundreds of votes a tiny but real deviation (a slight lean to the left answer)
  reaches any significance level, so a test only counts when its effect is also large
  (``Signal.large_effect``);
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

# The package, one module per sub-domain:
# records (votes, signals, assessments), config (thresholds), behaviour (own-vote signals),
# crowd (the Bradley-Terry crowd model and tests against it), accounts (fingerprint and lockstep
# rules), assessment (``assess``: correction, trust, flags).
# Every name other code uses is re-exported here; import from ``annotation.fraud``.

from __future__ import annotations

from annotation.fraud.accounts import LockstepPair, accounts_by_fingerprint, lockstep_pairs
from annotation.fraud.assessment import assess, combined_signal
from annotation.fraud.behaviour import (
    burst_signal,
    gold_signal,
    reading_floor_ms,
    side_bias_signal,
    speed_signal,
    tie_signals,
)
from annotation.fraud.config import DEFAULT_CONFIG, FraudConfig
from annotation.fraud.crowd import (
    FloatArray,
    crowd_disagreement_signal,
    crowd_length_effect,
    crowd_strength,
    length_bias_signal,
    promoter_signal,
)
from annotation.fraud.records import (
    BOTH_BAD,
    BOTH_BAD_RATE,
    BURST,
    COMBINED,
    CROWD,
    FINGERPRINT,
    GOLD,
    LENGTH,
    LOCKSTEP,
    MARKEDLY_LONGER,
    MODEL_A,
    MODEL_B,
    PROMOTER,
    SIDE,
    SPEED,
    TIE,
    TIE_RATE,
    WINNERS,
    AnnotatorAssessment,
    Signal,
    VoteRecord,
    length_log_ratio,
)

__all__ = [
    "BOTH_BAD",
    "BOTH_BAD_RATE",
    "BURST",
    "COMBINED",
    "CROWD",
    "DEFAULT_CONFIG",
    "FINGERPRINT",
    "GOLD",
    "LENGTH",
    "LOCKSTEP",
    "MARKEDLY_LONGER",
    "MODEL_A",
    "MODEL_B",
    "PROMOTER",
    "SIDE",
    "SPEED",
    "TIE",
    "TIE_RATE",
    "WINNERS",
    "AnnotatorAssessment",
    "FloatArray",
    "FraudConfig",
    "LockstepPair",
    "Signal",
    "VoteRecord",
    "accounts_by_fingerprint",
    "assess",
    "burst_signal",
    "combined_signal",
    "crowd_disagreement_signal",
    "crowd_length_effect",
    "crowd_strength",
    "gold_signal",
    "length_bias_signal",
    "length_log_ratio",
    "lockstep_pairs",
    "promoter_signal",
    "reading_floor_ms",
    "side_bias_signal",
    "speed_signal",
    "tie_signals",
]
