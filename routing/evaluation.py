"""Offline evaluation of the hybrid router on pairs with human votes and a judge label.

Django-free. The contract:

- Ground truth is the human majority: the outcome (model_a, model_b or tie) with strictly the
  most votes. When the top count is shared (say one vote for A and one for B) the humans
  expressed no preference, and with `split_rule="tie"` (the default) that counts as a tie;
  with `split_rule="skip"` such pairs are left out. Either way they are counted. Records
  without human votes are skipped and counted.
- A pair routed to a human (route `human` or `both`) gets the ground truth. A pair routed to
  the judge gets the judge's label; "tie (inconsistent)" counts as tie and a missing label
  counts as wrong.
- The disagreement model is cross-fitted: the pairs are split into K folds (whole questions
  per fold, so a prompt is never both trained on and routed) and each fold is scored by a model
  fitted on the other folds only. The budget is then allocated over all the out-of-fold scores.
- Baselines from the same run: random routing (averaged over seeds) and routing by the judge's
  confidence alone (`ColdStartRule`: null, then inconsistent, then tie, then margin). The
  router is reported twice: with its random audit stream paid from the budget (as it runs in
  an arena, the draw tilted towards risky pairs by `audit_tilt`), and on its ranking alone
  (no audit, as the confidence baseline). Each budget also reports the judge's error rate as
  the audit pairs alone estimate it (inverse-chance weighted), to hold against the truth.
- The consensus features (`routing.consensus`) are built from the judge labels of every record
  in the file (`LabelledPairs.context`, records without votes and skipped splits included):
  judge labels exist before routing, and no human vote enters them, not even through which
  records are kept.
- Cross-fitting makes the figures depend on the seed (which questions share a fold);
  `summarise_seeds` gives their mean and range over several seeds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata

from prefarena import jsontext
from routing.allocation import DEFAULT_AUDIT_FRACTION, DEFAULT_AUDIT_TILT, Allocation, allocate
from routing.audit import weighted_rate
from routing.consensus import Verdict
from routing.disagreement import (
    BlendedModel,
    ColdStartRule,
    DisagreementModel,
    DisagreementScorer,
    fit_disagreement_model,
)
from routing.features import (
    FeatureConfig,
    PairFeatures,
    RoutingPair,
    build_features,
    outcome,
    pair_from_record,
)

Outcome = Literal["model_a", "model_b", "tie"]
SplitRule = Literal["tie", "skip"]
# (features, judge wrong, human tie or None) -> a scorer.
Fitter = Callable[[PairFeatures, np.ndarray, np.ndarray | None], DisagreementScorer]
OUTCOMES: tuple[Outcome, ...] = ("model_a", "model_b", "tie")


class PairsFileError(ValueError):
    """A malformed pairs file; the message starts with the line number."""


@dataclass(frozen=True, slots=True)
class LabelledPair:
    pair: RoutingPair
    truth: Outcome
    group: Hashable


@dataclass(slots=True)
class LabelledPairs:
    pairs: list[LabelledPair] = field(default_factory=list)
    records: int = 0
    skipped_no_votes: int = 0
    splits: int = 0
    skipped_splits: int = 0
    # Every record's judge verdict, labelled by people or not: the consensus features' context.
    context: list[Verdict] = field(default_factory=list)


def human_majority(votes: Iterable[Mapping[str, Any]]) -> tuple[Outcome | None, bool]:
    """(the outcome with strictly the most votes or None, whether the top count was shared)."""
    counts = Counter(vote["winner"] for vote in votes)
    ranked = counts.most_common()
    if not ranked:
        return None, False
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None, True
    return ranked[0][0], False


def judge_outcome(label: str | None) -> Outcome | None:
    return outcome(label)  # type: ignore[return-value]


def _labelled_from_record(
    record: Any, result: LabelledPairs, split_rule: SplitRule
) -> LabelledPair | None:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    pair = pair_from_record(record)
    result.context.append(pair.verdict())
    votes = record.get("human_votes") or []
    if not isinstance(votes, list) or not all(
        isinstance(v, dict) and v.get("winner") in OUTCOMES for v in votes
    ):
        raise ValueError(f"human_votes must be a list of {{winner: one of {OUTCOMES}}}")
    if not votes:
        result.skipped_no_votes += 1
        return None
    truth, split = human_majority(votes)
    if split:
        result.splits += 1
        if split_rule == "skip":
            result.skipped_splits += 1
            return None
        truth = "tie"
    assert truth is not None
    group = record.get("question_id", pair.id)
    return LabelledPair(pair=pair, truth=truth, group=group)


def labelled_pairs_from_lines(
    lines: Iterable[str], *, split_rule: SplitRule = "tie"
) -> LabelledPairs:
    """Parse JSON lines in the MT-Bench pairs schema; PairsFileError names the bad line."""
    result = LabelledPairs()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = jsontext.loads(line)
            labelled = _labelled_from_record(record, result, split_rule)
        except ValueError as exc:  # jsontext.JSONTextError is a ValueError
            raise PairsFileError(f"line {number}: {exc}") from exc
        result.records += 1
        if labelled is not None:
            result.pairs.append(labelled)
    return result


def load_labelled_pairs(path: str | Path, *, split_rule: SplitRule = "tie") -> LabelledPairs:
    with Path(path).open(encoding="utf-8") as lines:
        return labelled_pairs_from_lines(lines, split_rule=split_rule)


def judge_wrong(labelled: Sequence[LabelledPair]) -> np.ndarray:
    """1.0 where the judge's label (tie for inconsistent, None counts wrong) misses the truth."""
    return np.fromiter(
        (judge_outcome(lp.pair.llm_label) != lp.truth for lp in labelled), float, len(labelled)
    )


def group_folds(groups: Sequence[Hashable], folds: int, seed: int) -> np.ndarray:
    """The fold of each pair: whole groups per fold, groups dealt out in a seeded order."""
    unique = list(dict.fromkeys(groups))
    if folds < 2 or folds > len(unique):
        raise ValueError(f"need 2 <= folds <= {len(unique)} groups, not {folds}")
    fold_of_group = {
        unique[g]: i % folds
        for i, g in enumerate(np.random.default_rng(seed).permutation(len(unique)))
    }
    return np.fromiter((fold_of_group[g] for g in groups), int, len(groups))


def human_ties(labelled: Sequence[LabelledPair]) -> np.ndarray:
    """1.0 where the human majority was a tie (what the outcome view learns)."""
    return np.fromiter((lp.truth == "tie" for lp in labelled), float, len(labelled))


def cross_fit(
    features: PairFeatures,
    y: np.ndarray,
    fold_of: np.ndarray,
    fitter: Fitter,
    human_tie: np.ndarray | None = None,
) -> tuple[np.ndarray, list[DisagreementScorer]]:
    """Out-of-fold P(judge wrong): each fold is scored by a model that never saw it."""
    scores = np.zeros(len(features))
    scorers: list[DisagreementScorer] = []
    for fold in np.unique(fold_of):
        train, held = np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
        tie = None if human_tie is None else human_tie[train]
        scorer = fitter(features.rows(train), y[train], tie)
        scores[held] = scorer.predict_proba(features.rows(held))
        scorers.append(scorer)
    return scores, scorers


def auroc(scores: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); None with one class."""
    positives = y > 0
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float | int]]:
    """Mean predicted vs observed rate per equal-width probability bin (empty bins left out)."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            table.append(
                {
                    "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                    "pairs": int(inside.sum()),
                    "predicted": round(float(p[inside].mean()), 4),
                    "observed": round(float(y[inside].mean()), 4),
                }
            )
    return table


def routing_outcome(to_human: np.ndarray, wrong: np.ndarray) -> dict[str, float]:
    """Final-label accuracy and the share of the judge's errors that went to a human."""
    errors = wrong > 0
    return {
        "accuracy": float(np.mean(to_human | ~errors)),
        "error_capture": float((to_human & errors).sum() / errors.sum()) if errors.any() else 1.0,
    }


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in values.items()}


def _mean_outcome(outcomes: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([o[key] for o in outcomes])) for key in outcomes[0]}


def _random_baseline(n: int, k: int, wrong: np.ndarray, seeds: int, seed: int) -> dict[str, float]:
    outcomes = []
    for s in range(seeds):
        to_human = np.zeros(n, bool)
        to_human[np.random.default_rng([seed, s]).choice(n, size=k, replace=False)] = True
        outcomes.append(routing_outcome(to_human, wrong))
    return _mean_outcome(outcomes)


def _ratio(ours: float, random: float) -> float | None:
    return round(ours / random, 4) if random > 0 else None


def evaluate_routing(
    labelled: Sequence[LabelledPair],
    *,
    budgets: Sequence[float],
    folds: int = 5,
    seed: int = 0,
    audit_fraction: float = DEFAULT_AUDIT_FRACTION,
    audit_tilt: float = DEFAULT_AUDIT_TILT,
    random_seeds: int = 20,
    audit_draws: int = 1,
    config: FeatureConfig | None = None,
    fitter: Fitter | None = None,
    context: Sequence[Verdict] = (),
) -> dict[str, Any]:
    """Cross-fitted routing figures at each human budget (a share of the pairs), for the
    router and both baselines, plus the disagreement model's AUROC and calibration.

    The router as it runs is averaged over `audit_draws` draws of its random audit (the first
    seeded by `seed`): what it captures is a random quantity, and one draw adds about +-0.02
    of noise to the ratio at a 25% budget on MT-Bench. Its audit figures are the first draw's."""
    if audit_draws < 1:
        raise ValueError(f"audit_draws must be at least 1, not {audit_draws}")
    if not labelled:
        raise ValueError("no pairs with human votes to evaluate on")
    fitter = fitter or default_fitter(seed)
    features = build_features([lp.pair for lp in labelled], config, context=context)
    wrong = judge_wrong(labelled)
    fold_of = group_folds([lp.group for lp in labelled], folds, seed)
    p_wrong, scorers = cross_fit(features, wrong, fold_of, fitter, human_ties(labelled))
    rule_score = ColdStartRule().predict_proba(features)
    n = len(labelled)

    per_budget = []
    for budget in budgets:
        draws = [
            allocate(
                p_wrong,
                budget=float(budget),
                audit_fraction=audit_fraction,
                audit_tilt=audit_tilt,
                seed=seed + 7919 * draw,  # draw 0: the one draw this made before
            )
            for draw in range(audit_draws)
        ]
        ours = draws[0]
        k = int(ours.to_human.sum())
        # The router's ranking alone, every human label spent by priority: what the judge-
        # confidence baseline (which has no audit stream either) compares with.
        ranked = allocate(p_wrong, budget=float(budget), audit_fraction=0.0, seed=seed)
        rule = allocate(rule_score, budget=float(budget), audit_fraction=0.0, seed=seed)
        random = _random_baseline(n, k, wrong, random_seeds, seed)
        ours_outcome = _mean_outcome([routing_outcome(d.to_human, wrong) for d in draws])
        ranked_outcome = routing_outcome(ranked.to_human, wrong)
        rule_outcome = routing_outcome(rule.to_human, wrong)
        per_budget.append(
            {
                "budget": float(budget),
                "human_labels": k,
                "audit_pairs": ours.count("both"),
                "judge_error_rate_from_audit": _audit_estimate(ours, wrong),
                "router": _rounded(ours_outcome),
                "router_without_audit": _rounded(ranked_outcome),
                "judge_confidence": _rounded(rule_outcome),
                "random": _rounded(random),
                "error_capture_ratio_vs_random": {
                    "router": _ratio(ours_outcome["error_capture"], random["error_capture"]),
                    "router_without_audit": _ratio(
                        ranked_outcome["error_capture"], random["error_capture"]
                    ),
                    "judge_confidence": _ratio(
                        rule_outcome["error_capture"], random["error_capture"]
                    ),
                },
            }
        )

    models = [
        s.direct if isinstance(s, BlendedModel) else s
        for s in scorers
        if isinstance(s, DisagreementModel | BlendedModel)
    ]
    return {
        "pairs": n,
        "judge_error_rate": round(float(wrong.mean()), 4),
        "judge_null_labels": sum(lp.pair.llm_label is None for lp in labelled),
        "folds": folds,
        "seed": seed,
        "audit_fraction": audit_fraction,
        "audit_tilt": audit_tilt,
        "audit_draws": audit_draws,
        "random_seeds": random_seeds,
        "features": len(features.names),
        "disagreement_model": {
            "auroc": _round_or_none(auroc(p_wrong, wrong)),
            "auroc_judge_confidence": _round_or_none(auroc(rule_score, wrong)),
            "brier": round(float(np.mean((p_wrong - wrong) ** 2)), 4),
            "brier_base_rate": round(float(wrong.mean() * (1 - wrong.mean())), 4),
            "cold_start_folds": sum(isinstance(s, ColdStartRule) for s in scorers),
            "penalty_per_fold": [
                {"l2": m.l2, "judge_penalty_share": m.judge_penalty_share} for m in models
            ],
            "reliability": reliability(p_wrong, wrong),
        },
        "budgets": per_budget,
    }


def default_fitter(seed: int) -> Fitter:
    """The router's own fit: the direct model blended with its outcome view."""

    def fit(x: PairFeatures, y: np.ndarray, human_tie: np.ndarray | None) -> DisagreementScorer:
        return fit_disagreement_model(x, y, human_tie=human_tie, seed=seed)

    return fit


def _audit_estimate(allocation: Allocation, wrong: np.ndarray) -> float | None:
    """The judge's error rate over all the pairs as the audit stream alone estimates it (each
    audited pair weighted by 1 / its chance), to set against the true `judge_error_rate`."""
    audited = allocation.audited
    if not audited.any():
        return None
    rate, _ = weighted_rate(wrong[audited], allocation.audit_chance[audited])
    return round(rate, 4)


def _round_or_none(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def summarise_seeds(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per budget: mean, min and max over the reports (one per seed) of each error-capture
    ratio vs random, and of the router's final-label accuracy."""
    summary = []
    for rows in zip(*(report["budgets"] for report in reports), strict=True):
        entry: dict[str, Any] = {"budget": rows[0]["budget"], "seeds": len(rows)}
        for name in rows[0]["error_capture_ratio_vs_random"]:
            values = [row["error_capture_ratio_vs_random"][name] for row in rows]
            # A ratio is None where random routing caught nothing (a budget of 0).
            entry[f"{name}_ratio"] = _spread([v for v in values if v is not None])
        entry["router_accuracy"] = _spread([row["router"]["accuracy"] for row in rows])
        summary.append(entry)
    return summary


def auroc_over_seeds(reports: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """Mean, min and max of the disagreement model's AUROC over the reports (one per seed)."""
    values = [report["disagreement_model"]["auroc"] for report in reports]
    return _spread([v for v in values if v is not None])


def _spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "mean": round(float(np.mean(values)), 4),
        "min": round(float(np.min(values)), 4),
        "max": round(float(np.max(values)), 4),
    }
