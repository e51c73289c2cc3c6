"""The audit stream's design: a uniform draw vs draws leaning on risk, side by side in one run.

The audit stream is paid from the human budget and catches judge errors only at their base
rate when drawn uniformly. Leaning the draw on the router's P(judge wrong) (`audit_tilt`)
catches more of them; each audited pair is then weighted by 1 / its chance, so the audit's
estimate of the judge's error rate stays unbiased, at some cost in its spread.

For each dataset, P(judge wrong) is cross-fitted per seed exactly as `router_eval` does it;
then, per audit tilt, many audit draws: the error capture of the router as it runs (audit
included) against random routing at each budget, and the audit's estimate of the judge's error
rate over all the pairs (bias and RMSE, weighted and unweighted; effective sample size), and
the router page's estimate of how often the judge-labelled pairs are right (post-stratified by
P(disagree), `routing.audit.judge_labels_right`) against the truth: from the audits below the
pairs that go to people whatever the audit draws (`surely_human`, what the page reads), and
from every audit, side by side. Each tilt is drawn twice:
systematically over a random order of the pairs, and over the pairs sorted by P(judge wrong)
(the router's default; the same chances, spread evenly over the range of risk).

    python -m benchmarks.audit                   # MT-Bench and the PandaLM subset
    python -m benchmarks.audit --seeds 2 --draws 50
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from routing.allocation import Allocation, allocate
from routing.audit import judge_labels_right, judge_side, weighted_rate
from routing.evaluation import (
    cross_fit,
    default_fitter,
    group_folds,
    human_ties,
    judge_wrong,
    load_labelled_pairs,
)
from routing.features import build_features

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    "MT-Bench (GPT-4 judge)": ROOT.parent / "shared/data/mtbench/pairs_human_vs_gpt4.jsonl",
    "PandaLM subset (GPT-3.5 judge)": ROOT / "benchmarks/data/pandalm_subset/pairs.jsonl",
}
TILTS = (0.0, 0.3, 0.7, 1.0)
# The budget at which the final-label accuracy estimate is checked.
FINAL_BUDGET = 0.25


def cross_fitted(path: Path, seeds: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Whether the judge was wrong per pair, and out-of-fold P(judge wrong) per seed."""
    loaded = load_labelled_pairs(path)
    features = build_features([lp.pair for lp in loaded.pairs], context=loaded.context)
    wrong = judge_wrong(loaded.pairs)
    groups = [lp.group for lp in loaded.pairs]
    scores = []
    for seed in range(seeds):
        p, _ = cross_fit(
            features,
            wrong,
            group_folds(groups, 5, seed),
            default_fitter(seed),
            human_ties(loaded.pairs),
        )
        scores.append(p)
    return wrong, scores


def _final_accuracy_error(
    allocation: Allocation, p: np.ndarray, wrong: np.ndarray, *, every_audit: bool = False
) -> float:
    """The router page's estimate of the judge-labelled pairs' accuracy (post-stratified by
    P(disagree), audits weighted) minus their true accuracy. It reads the audits the page
    reads (`judge_side`); with `every_audit`, all of them, as it did before (the top of the
    ranking then stands in for judge-labelled pairs of its stratum).
    """
    audited, judge_only = allocation.audited, ~allocation.to_human
    if not every_audit:
        audited[audited] = judge_side(allocation.surely_human[audited])
    if not audited.any() or not judge_only.any():
        return np.nan
    right = judge_labels_right(
        p[judge_only], p[audited], 1.0 - wrong[audited], allocation.audit_chance[audited]
    )
    return right[0] / judge_only.sum() - (1.0 - wrong[judge_only].mean())


def audit_figures(
    wrong: np.ndarray,
    scores: list[np.ndarray],
    *,
    tilt: float,
    budgets: list[float],
    fraction: float,
    draws: int,
    by_risk: bool = True,
) -> dict[str, float]:
    """Mean capture ratio per budget over seeds and draws; the audit estimate's error."""
    n, errors = len(wrong), wrong > 0
    capture = {budget: [] for budget in budgets}
    weighted, plain, effective, final, final_every = [], [], [], [], []
    for seed, p in enumerate(scores):
        for draw in range(draws):
            for budget in budgets:
                allocation = allocate(
                    p,
                    budget=budget,
                    audit_fraction=fraction,
                    audit_tilt=tilt,
                    audit_by_risk=by_risk,
                    seed=seed * 100_003 + draw,
                )
                to_human = allocation.to_human
                random_share = to_human.sum() / n  # what random routing captures
                capture[budget].append((to_human & errors).sum() / errors.sum() / random_share)
                if budget == FINAL_BUDGET:
                    final.append(_final_accuracy_error(allocation, p, wrong))
                    final_every.append(
                        _final_accuracy_error(allocation, p, wrong, every_audit=True)
                    )
            # The audit draw does not depend on the budget (it is drawn first), only on the
            # seed: take the last allocation's.
            audited = allocation.audited
            if audited.any():
                rate, size = weighted_rate(wrong[audited], allocation.audit_chance[audited])
                weighted.append(rate - wrong.mean())
                plain.append(wrong[audited].mean() - wrong.mean())
                effective.append(size)
    figures = {f"capture {budget:.0%}": float(np.mean(capture[budget])) for budget in budgets}
    figures |= {
        "bias": float(np.mean(weighted)),
        "rmse": float(np.sqrt(np.mean(np.square(weighted)))),
        "unweighted bias": float(np.mean(plain)),
        "final rmse": _rmse(final),
        "final bias": _bias(final),
        "final rmse, every audit": _rmse(final_every),
        "final bias, every audit": _bias(final_every),
        "audited": fraction * n,
        "effective": float(np.mean(effective)),
    }
    return figures


def _rmse(errors: list[float]) -> float:
    return float(np.sqrt(np.nanmean(np.square(errors)))) if errors else np.nan


def _bias(errors: list[float]) -> float:
    return float(np.nanmean(errors)) if errors else np.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="cross-fitting seeds")
    parser.add_argument("--draws", type=int, default=200, help="audit draws per seed")
    parser.add_argument("--audit-fraction", type=float, default=0.05)
    parser.add_argument("--budgets", default="0.1,0.25,0.5")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]

    for name, path in DATASETS.items():
        wrong, scores = cross_fitted(path, args.seeds)
        print(
            f"\n{name}: {len(wrong)} pairs, judge wrong on {wrong.mean():.3f}; audit "
            f"{args.audit_fraction:.0%} of the pairs, paid from the budget; "
            f"{args.seeds} seeds x {args.draws} draws"
        )
        header = (
            "audit tilt  draw order  "
            + "  ".join(f"x random @{b:.0%}" for b in budgets)
            + "   error-rate estimate: bias    RMSE  (unweighted bias)  effective n / drawn"
            + f"   judge-label accuracy @{FINAL_BUDGET:.0%}, bias RMSE: audits below the sure"
            + " line | every audit"
        )
        print(header)
        for tilt, by_risk in itertools.product(TILTS, (False, True)):
            f = audit_figures(
                wrong,
                scores,
                tilt=tilt,
                budgets=budgets,
                fraction=args.audit_fraction,
                draws=args.draws,
                by_risk=by_risk,
            )
            captures = "  ".join(f"{f[f'capture {b:.0%}']:>13.3f}" for b in budgets)
            order = "by risk" if by_risk else "random"
            print(
                f"{tilt:>10.1f}  {order:>10}  {captures}   {f['bias']:>+25.4f}  {f['rmse']:.4f}"
                f"  ({f['unweighted bias']:+.4f})          {f['effective']:.0f} / "
                f"{f['audited']:.0f}   {f['final bias']:>+37.4f} {f['final rmse']:.4f} | "
                f"{f['final bias, every audit']:+.4f} {f['final rmse, every audit']:.4f}"
            )


if __name__ == "__main__":
    main()
