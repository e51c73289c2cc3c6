from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.allocation import DEFAULT_AUDIT_TILT


def _budgets(text: str) -> list[float]:
    budgets = []
    for part in text.split(","):
        try:
            budget = float(part)
        except ValueError:
            raise CommandError(f"--budgets: {part.strip()!r} is not a number") from None
        if not 0.0 <= budget <= 1.0:
            raise CommandError(f"--budgets: {budget} is not a share of the pairs in [0, 1]")
        budgets.append(budget)
    return budgets


class Command(BaseCommand):
    help = (
        "Evaluate the hybrid human/judge router on pairs with human votes and a judge label "
        "(MT-Bench pairs schema), cross-fitted: final-label accuracy and the share of the "
        "judge's errors sent to humans at each human budget, against random routing and "
        "routing by judge confidence alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pairs", type=Path, required=True, help="a .jsonl pairs file")
        parser.add_argument(
            "--budgets",
            default="0,0.1,0.25,0.5,1",
            help="comma-separated shares of the pairs a human labels (default: %(default)s)",
        )
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--audit-fraction",
            type=float,
            default=0.05,
            help="random pairs labelled by both, paid from the human budget (default: 0.05)",
        )
        parser.add_argument(
            "--audit-tilt",
            type=float,
            default=DEFAULT_AUDIT_TILT,
            help="how far a pair's chance of an audit follows its P(disagree): 0 uniform, "
            "1 proportional (default: %(default)s)",
        )
        parser.add_argument("--random-seeds", type=int, default=20)
        parser.add_argument(
            "--split-rule",
            choices=["tie", "skip"],
            default="tie",
            help="human votes without a strict majority count as a tie, or are skipped",
        )
        parser.add_argument(
            "--include-models",
            action="store_true",
            help="add which models wrote the answers as features (off: often unknown when routing)",
        )
        parser.add_argument(
            "--no-consensus",
            action="store_true",
            help="leave out the features from the judge's other verdicts (an ablation)",
        )
        parser.add_argument(
            "--embeddings",
            action="store_true",
            help="add answer similarity from the packaged sentence embedder "
            "(requirements-embeddings.txt; without it the lexical cosine stands in)",
        )
        parser.add_argument(
            "--audit-draws",
            type=int,
            default=20,
            help="average the router as it runs over this many draws of its random audit "
            "(default: 20; 1 is one arena's luck)",
        )
        parser.add_argument(
            "--repeat",
            type=int,
            default=1,
            help="run seeds SEED..SEED+N-1 and add their mean and range (cross-fitting varies "
            "with the seed; default: 1)",
        )
        parser.add_argument("--format", choices=["json", "table"], default="json")

    def handle(self, *args: Any, **options: Any) -> None:
        from routing.embeddings import EmbedderUnavailable
        from routing.evaluation import (
            PairsFileError,
            auroc_over_seeds,
            evaluate_routing,
            load_labelled_pairs,
            summarise_seeds,
        )
        from routing.features import FeatureConfig

        budgets = _budgets(options["budgets"])
        for option in ("audit_fraction", "audit_tilt"):
            if not 0.0 <= options[option] <= 1.0:
                raise CommandError(f"--{option.replace('_', '-')} must lie in [0, 1]")
        if options["random_seeds"] < 1:
            raise CommandError("--random-seeds must be at least 1")
        for option in ("repeat", "audit_draws"):
            if options[option] < 1:
                raise CommandError(f"--{option.replace('_', '-')} must be at least 1")
        path = Path(options["pairs"])  # call_command passes keyword options unconverted
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            loaded = load_labelled_pairs(path, split_rule=options["split_rule"])
        except PairsFileError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        switches = {"consensus": not options["no_consensus"], "embeddings": options["embeddings"]}
        config = (
            FeatureConfig.with_models_of([lp.pair for lp in loaded.pairs], **switches)
            if options["include_models"]
            else FeatureConfig(**switches)
        )
        seeds = range(options["seed"], options["seed"] + options["repeat"])
        try:
            reports = [
                evaluate_routing(
                    loaded.pairs,
                    budgets=budgets,
                    folds=options["folds"],
                    seed=seed,
                    audit_fraction=options["audit_fraction"],
                    audit_tilt=options["audit_tilt"],
                    random_seeds=options["random_seeds"],
                    audit_draws=options["audit_draws"],
                    config=config,
                    context=loaded.context,
                )
                for seed in seeds
            ]
        except (ValueError, EmbedderUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        report = reports[0]
        if len(reports) > 1:
            report = {
                **report,
                "over_seeds": summarise_seeds(reports),
                "auroc_over_seeds": auroc_over_seeds(reports),
            }
        report = {
            "pairs_file": str(path),
            "records": loaded.records,
            "skipped_no_human_votes": loaded.skipped_no_votes,
            "human_splits": loaded.splits,
            "split_rule": options["split_rule"],
            "skipped_splits": loaded.skipped_splits,
            "include_models": options["include_models"],
            "consensus_features": config.consensus,
            "embedding_features": config.embeddings,
            **report,
        }
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._write_table(report)

    def _write_table(self, report: dict[str, Any]) -> None:
        model = report["disagreement_model"]
        self.stdout.write(
            f"{report['pairs']} pairs ({report['skipped_no_human_votes']} without human votes "
            f"skipped, {report['human_splits']} split votes -> {report['split_rule']}); "
            f"judge error rate {report['judge_error_rate']:.3f}"
        )
        self.stdout.write(
            f"disagreement model AUROC {model['auroc']} (judge confidence alone "
            f"{model['auroc_judge_confidence']}), Brier {model['brier']} "
            f"(base rate {model['brier_base_rate']})"
        )
        estimates = {row["judge_error_rate_from_audit"] for row in report["budgets"]} - {None}
        self.stdout.write(
            f"audit stream: {report['audit_fraction']:.0%} of the pairs, tilt "
            f"{report['audit_tilt']}, paid from the budget; its weighted estimate of the judge "
            f"error rate: {', '.join(f'{e:.3f}' for e in sorted(estimates)) or '-'}"
        )
        header = (
            f"{'budget':>6} {'humans':>6} | {'router acc':>10} {'capture':>7} {'x rand':>6} "
            f"{'no audit':>8} | "
            f"{'conf acc':>8} {'capture':>7} {'x rand':>6} | {'rand acc':>8} {'capture':>7}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for row in report["budgets"]:
            ratio = row["error_capture_ratio_vs_random"]
            self.stdout.write(
                f"{row['budget']:>6.2f} {row['human_labels']:>6} | "
                f"{row['router']['accuracy']:>10.4f} {row['router']['error_capture']:>7.4f} "
                f"{_ratio(ratio['router']):>6} {_ratio(ratio['router_without_audit']):>8} | "
                f"{row['judge_confidence']['accuracy']:>8.4f} "
                f"{row['judge_confidence']['error_capture']:>7.4f} "
                f"{_ratio(ratio['judge_confidence']):>6} | "
                f"{row['random']['accuracy']:>8.4f} {row['random']['error_capture']:>7.4f}"
            )
        for row in report.get("over_seeds", ()):
            spread = row["router_ratio"], row["router_without_audit_ratio"]
            self.stdout.write(
                f"budget {row['budget']:.2f} over {row['seeds']} seeds: router x rand "
                + ", without audit x rand ".join(
                    "-" if s is None else f"{s['mean']:.2f} ({s['min']:.2f}-{s['max']:.2f})"
                    for s in spread
                )
            )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
