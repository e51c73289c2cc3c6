"""Routing throughput: the learnt disagreement model vs the cold-start rule, on CPU.

Routes N comparisons (resampled with replacement from the MT-Bench pairs file) within a human
budget: build the features, score P(judge wrong), allocate human / judge / both. The judge's
own labelling is not timed (its verdicts come from the file). The model is fitted once on the
whole file beforehand; its fitting time is printed separately. The cold-start rule reads only
the verdict (and margin) columns, so it skips the text scan.

    python -m benchmarks.router                       # 10,000 comparisons, budget 25%
    python -m benchmarks.router --comparisons 2000 --repeats 1
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from routing.allocation import allocate
from routing.disagreement import ColdStartRule, DisagreementScorer, fit_disagreement_model
from routing.evaluation import human_ties, judge_wrong, load_labelled_pairs
from routing.features import PairFeatures, RoutingPair, build_features, verdict_features

# shared/ lies beside the repository (as in CI).
DEFAULT_PAIRS_FILE = (
    Path(__file__).resolve().parents[1].parent / "shared/data/mtbench/pairs_human_vs_gpt4.jsonl"
)


def _route_timed(
    pairs: list[RoutingPair],
    featurise: Callable[[list[RoutingPair]], PairFeatures],
    scorer: DisagreementScorer,
    budget: float,
    seed: int,
) -> dict[str, float]:
    started = time.perf_counter()
    features = featurise(pairs)
    featured = time.perf_counter()
    p_wrong = scorer.predict_proba(features)
    scored = time.perf_counter()
    allocate(p_wrong, budget=budget, seed=seed)
    done = time.perf_counter()
    return {
        "features": featured - started,
        "scoring": scored - featured,
        "allocation": done - scored,
        "total": done - started,
    }


def _median_times(run: Callable[[], dict[str, float]], repeats: int) -> dict[str, float]:
    runs = [run() for _ in range(repeats)]
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=10_000)
    parser.add_argument("--pairs-file", type=Path, default=DEFAULT_PAIRS_FILE)
    parser.add_argument("--budget", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=3, help="the median run is reported")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    labelled = load_labelled_pairs(args.pairs_file).pairs
    started = time.perf_counter()
    model = fit_disagreement_model(
        build_features([lp.pair for lp in labelled]),
        judge_wrong(labelled),
        human_tie=human_ties(labelled),
        seed=args.seed,
    )
    fit_seconds = time.perf_counter() - started

    rng = random.Random(args.seed)
    pairs = [rng.choice(labelled).pair for _ in range(args.comparisons)]
    chars = sum(len(p.prompt) + len(p.response_a) + len(p.response_b) for p in pairs)
    timings = {
        "disagreement model": _median_times(
            lambda: _route_timed(pairs, build_features, model, args.budget, args.seed), args.repeats
        ),
        "cold-start rule": _median_times(
            lambda: _route_timed(pairs, verdict_features, ColdStartRule(), args.budget, args.seed),
            args.repeats,
        ),
    }

    print(
        f"routing {args.comparisons:,} comparisons ({chars / 1e6:.1f} M characters) at a "
        f"{args.budget:.0%} human budget, CPU, median of {args.repeats}; "
        f"model fitted once on {len(labelled):,} pairs in {fit_seconds:.2f} s (not counted)"
    )
    header = f"{'scorer':<20} {'features':>9} {'scoring':>9} {'allocation':>11} {'total':>9}"
    print(header)
    print("-" * len(header))
    for name, t in timings.items():
        print(
            f"{name:<20} {t['features']:>8.3f}s {t['scoring']:>8.4f}s "
            f"{t['allocation']:>10.4f}s {t['total']:>8.3f}s"
        )
    total = timings["disagreement model"]["total"]
    verdict = "meets" if total < 5.0 else "misses"
    print(f"target < 5 s for {args.comparisons:,}: {verdict} ({total:.2f} s)")


if __name__ == "__main__":
    main()
