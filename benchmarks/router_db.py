"""The router in the app: 10,000 judged pending comparisons in PostgreSQL routed by one
`comparisons_route` runs (at most 5,000 pairs a run; read, features, scoring, allocation, stored
decisions with their features), next to the pure core on the same pairs in the same run.

    .venv/bin/python benchmarks/router_db.py [--db postgres://postgres@127.0.0.1:5432/prefarena_bench_router]

The texts are the MT-Bench pairs recycled up to 10,000 comparisons; the disagreement model is
fitted on the MT-Bench pairs (not timed) and stored as the project's current fit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAIRS = ROOT.parent / "shared" / "data" / "mtbench" / "pairs_human_vs_gpt4.jsonl"
SLUG = "bench-router"
JUDGE = "gpt-4"
LABELS = {"model_a": "model_a", "model_b": "model_b", "tie": "tie", "tie (inconsistent)": "tie"}


def _load(n: int):  # Django models are imported after setup
    from annotation.models import Candidate, Comparison, ModelEntry, Project, Prompt
    from models_backend.models import Judgment
    from routing import services
    from routing.evaluation import load_labelled_pairs

    labelled = load_labelled_pairs(PAIRS).pairs
    Project.objects.filter(slug=SLUG).delete()
    project = Project.objects.create(slug=SLUG, title="Router benchmark")
    services.routing_policy_set(project=project, judge=JUDGE, budget_share=0.25)
    a, b = (ModelEntry.objects.create(project=project, name=name) for name in ("left", "right"))
    chosen = [labelled[i % len(labelled)] for i in range(n)]
    prompts = Prompt.objects.bulk_create(
        Prompt(
            project=project,
            external_id=f"p{i}",
            category=lp.pair.category or "",
            turns=[lp.pair.prompt],
        )
        for i, lp in enumerate(chosen)
    )
    candidates = Candidate.objects.bulk_create(
        Candidate(prompt=prompt, model=model, responses=[text])
        for prompt, lp in zip(prompts, chosen, strict=True)
        for model, text in ((a, lp.pair.response_a), (b, lp.pair.response_b))
    )
    comparisons = Comparison.objects.bulk_create(
        Comparison(
            project=project,
            prompt=prompt,
            candidate_a=candidates[2 * i],
            candidate_b=candidates[2 * i + 1],
            route=Comparison.Route.PENDING,
        )
        for i, prompt in enumerate(prompts)
    )
    Judgment.objects.bulk_create(
        Judgment(
            comparison=comparison,
            judge=JUDGE,
            verdict=LABELS[lp.pair.llm_label or "tie"],
            p_a=0.0,
            p_b=0.0,
            p_tie=0.0,
            consistent=lp.pair.llm_label != "tie (inconsistent)",
        )
        for comparison, lp in zip(comparisons, chosen, strict=True)
    )
    return project, labelled, chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/prefarena_bench_router")
    parser.add_argument("--comparisons", type=int, default=10_000)
    args = parser.parse_args()

    from benchmarks.leaderboard_db import _ensure_database, _setup_django

    _ensure_database(args.db)
    _setup_django(args.db)
    import numpy as np

    from routing import services
    from routing.allocation import allocate
    from routing.disagreement import fit_disagreement_model
    from routing.evaluation import human_ties, judge_wrong
    from routing.features import build_features
    from routing.models import DisagreementFit, RouteDecision

    started = time.perf_counter()
    project, labelled, chosen = _load(args.comparisons)
    setup = time.perf_counter() - started
    model = fit_disagreement_model(
        build_features([lp.pair for lp in labelled]),
        judge_wrong(labelled),
        human_tie=human_ties(labelled),
    )
    DisagreementFit.objects.create(
        project=project,
        judge=JUDGE,
        kind=DisagreementFit.Kind.LOGISTIC,
        params=model.to_params(),
        labelled=len(labelled),
        judge_wrong=int(judge_wrong(labelled).sum()),
    )

    started = time.perf_counter()
    features = build_features([lp.pair for lp in chosen])
    allocate(model.predict_proba(features), budget=0.25)
    pure = time.perf_counter() - started

    # A run routes at most `services.MAX_BATCH` pairs: route until nothing judged is left, as
    # the beat would, and time all the runs.
    started = time.perf_counter()
    results = []
    while not results or results[-1].routed:
        results.append(services.comparisons_route(project=project))
    in_app = time.perf_counter() - started
    runs = [r for r in results if r.routed]
    stored = RouteDecision.objects.filter(comparison__project=project)
    human_share = np.mean([r in ("human", "both") for r in stored.values_list("route", flat=True)])

    print(
        f"routing {args.comparisons:,} judged pending comparisons "
        f"(setup {setup:.1f} s, not counted)"
    )
    print(f"{'path':<44}{'seconds':>10}")
    print(f"{'pure core: features + scoring + allocation':<44}{pure:>10.2f}")
    print(f"{'in the app: comparisons_route, PostgreSQL':<44}{in_app:>10.2f}")
    print(f"stored decisions {stored.count():,} in {len(runs)} runs; human share {human_share:.3f}")
    for number, result in enumerate(runs, start=1):
        print(f"  run {number}: {result}")
    verdict = "meets" if in_app < 5 else "misses"
    print(f"target < 5 s for 10,000 (judge excluded): in the app {verdict} ({in_app:.2f} s)")


if __name__ == "__main__":
    main()
